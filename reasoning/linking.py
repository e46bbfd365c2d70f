"""Entity linking: which KB entity a question is about, and where it sits in the text.

Three sources, tried in order:

1. the caller named it (`Question.topic_entity`) or the text marks it (`[Ginger Rogers]`);
2. exact matches: every KB name found in the lowercased question by an Aho-Corasick
   automaton (word-boundary aware). Many titles are ordinary words ("Her", "Police",
   "Following"), so a match is ranked by whether masking it leaves a known question
   template (from training), then by length, and loses rank when it is made only of the
   templates' own words;
3. templates as anchors: when no match leaves a known template but the question starts and
   ends like one, the text in between is the entity, looked up exactly or fuzzily (typos);
   otherwise the words no template uses are matched fuzzily against KB names.

Names that differ only by case or accents ("Bruno Barreto" the director, "bruno barreto"
the tag) are one surface form; its entities come back ordered by exact spelling, training
frequency as topic entity, and degree, so a caller that knows the relation it will follow
can pick among them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

import ahocorasick
from rapidfuzz import fuzz, process
from rapidfuzz.utils import default_process

from reasoning.kb import KnowledgeBase
from reasoning.metaqa import bracket_span

MASK = "NE"
Method = Literal["given", "bracket", "exact", "template", "fuzzy", "none"]

FUZZY_CUTOFF = 85.0  # rapidfuzz ratio (0-100) below which a fuzzy match is no match
_WORD = re.compile(r"\w+")
_SPACES = re.compile(r"\s+")
_EDGE_PUNCT = " \t\n?!.,;:"
# Words that never make an entity on their own when no template vouches for the match.
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "by",
        "and",
        "or",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "do",
        "does",
        "did",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "that",
        "this",
        "these",
        "those",
        "it",
        "its",
        "me",
        "my",
        "i",
        "you",
        "your",
        "he",
        "she",
        "they",
        "them",
        "with",
        "from",
        "about",
        "as",
        "tell",
        "give",
        "show",
        "list",
        "find",
    ]
)


def fold(text: str) -> str:
    """Lowercase and drop accents (`Amélie` -> `amelie`) without changing the length.

    Same length means offsets found in the folded text are offsets in the original.
    """
    lowered = text.lower()
    if lowered.isascii():
        return lowered
    if len(lowered) != len(text):
        lowered = "".join(c.lower() if len(c.lower()) == 1 else c for c in text)
    return "".join(_ascii_letter(c) for c in lowered)


@lru_cache(maxsize=4096)
def _ascii_letter(char: str) -> str:
    """`é` -> `e`: the base letter when the rest of its decomposition is only accents."""
    if char.isascii():
        return char
    parts = unicodedata.normalize("NFKD", char)
    if len(parts) > 1 and parts[0].isascii() and all(unicodedata.combining(c) for c in parts[1:]):
        return parts[0]
    return char


def _squash(text: str) -> str:
    """Runs of whitespace become one space; edges are kept so `NE,` stays apart from `NE ,`."""
    return _SPACES.sub(" ", text)


def template_key(text: str, span: tuple[int, int] | None) -> str:
    """The question with `span` replaced by the mask, lowercased, spaces and end marks tidied.

    Training templates and linked questions both go through here, so they compare equal.
    """
    if span is None:
        return _squash(fold(text)).strip(_EDGE_PUNCT)
    left = _squash(fold(text[: span[0]])).lstrip()
    right = _squash(fold(text[span[1] :])).rstrip()
    return f"{left}{MASK}{right}".strip(_EDGE_PUNCT)


def masked_text(text: str, span: tuple[int, int] | None) -> str:
    """The question as the encoder sees it: the entity replaced by the mask, case kept."""
    if span is None:
        return text
    return f"{text[: span[0]]}{MASK}{text[span[1] :]}"


@dataclass(frozen=True)
class Link:
    """The linker's verdict on one question."""

    entity: int | None  # KB id of the best entity, None when nothing matched
    span: tuple[int, int] | None  # where it sits in the text (brackets included)
    method: Method
    score: float  # in [0, 1]: 1 for given/bracket/template-confirmed, the fuzzy ratio otherwise
    candidates: tuple[int, ...] = ()  # every entity with the same surface form, best first
    template: str | None = None  # template_key of the masked question
    reason: str | None = None  # why nothing was linked

    @property
    def found(self) -> bool:
        return self.entity is not None


@dataclass
class _Match:
    span: tuple[int, int]
    surface: str  # folded name
    known: bool
    plain: bool  # made only of template words / stopwords: weak without a template

    def rank(self) -> tuple[bool, bool, int]:
        return (self.known, not self.plain, self.span[1] - self.span[0])


@dataclass
class EntityLinker:
    """Links questions to KB entities; build once, call `link` or `link_batch` many times."""

    kb: KnowledgeBase
    templates: Mapping[str, int] = field(default_factory=dict)  # template_key -> frequency
    topic_prior: Mapping[int, int] = field(default_factory=dict)  # entity id -> times a topic

    def __post_init__(self) -> None:
        self._by_surface: dict[str, list[int]] = {}
        for i, name in enumerate(self.kb.names):
            surface = fold(name).strip()
            if surface:
                self._by_surface.setdefault(surface, []).append(i)
        self._surfaces = list(self._by_surface)
        # Fuzzy keys drop punctuation ("Why Me?" ~ "wy me"); computed once, not per query.
        self._fuzzy_keys = [default_process(s) for s in self._surfaces]
        self._automaton = ahocorasick.Automaton()
        for surface in self._surfaces:
            self._automaton.add_word(surface, surface)
        self._automaton.make_automaton()
        self._vocabulary = _STOPWORDS | {w for t in self.templates for w in _WORD.findall(t) if w != MASK}
        self._anchors = sorted(
            {tuple(t.split(MASK, 1)) for t in self.templates if t.count(MASK) == 1},
            key=lambda pair: -len(pair[0]) - len(pair[1]),
        )

    # --- public --------------------------------------------------------------------------

    def link_batch(self, texts: Sequence[str], given: Sequence[str | None] | None = None) -> list[Link]:
        """Link each text; `given[i]`, when set, is an entity name the caller already knows."""
        given = given or [None] * len(texts)
        return [self.link(text, name) for text, name in zip(texts, given)]

    def link(self, text: str, given: str | None = None) -> Link:
        """Link one question (bracketed or raw text)."""
        if given:
            return self._link_given(text, given)
        marked = bracket_span(text)
        if marked is not None:
            return self._link_name(text, marked[2], (marked[0], marked[1]), "bracket")
        return self._link_raw(text)

    def entities_named(self, name: str) -> list[int]:
        """Entity ids whose name equals `name` up to case, best first (exact case leads)."""
        return self._order(self._by_surface.get(fold(name).strip(), []), name)

    # --- sources -------------------------------------------------------------------------

    def _link_given(self, text: str, name: str) -> Link:
        at = fold(text).find(fold(name))
        span = (at, at + len(name)) if at >= 0 else None
        return self._link_name(text, name, span, "given")

    def _link_name(self, text: str, name: str, span: tuple[int, int] | None, method: Method) -> Link:
        ids = self.entities_named(name)
        score = 1.0
        if not ids:
            ids, score = self._fuzzy(name)
            if not ids:
                return self._none(f"{name!r} is not a KB entity, not even approximately")
        return Link(ids[0], span, method, score, tuple(ids), template_key(text, span))

    def _link_raw(self, text: str) -> Link:
        folded = fold(text)
        matches = self._exact_matches(text, folded)
        best = max(matches, key=_Match.rank, default=None)
        if best is not None and best.known:
            return self._from_match(text, best, "exact", 1.0)
        anchored = self._anchored(text, folded)
        if anchored is not None:
            return anchored
        if best is not None and not best.plain:
            return self._from_match(text, best, "exact", 0.9)
        return self._residual_fuzzy(text, folded)

    def _exact_matches(self, text: str, folded: str) -> list[_Match]:
        found: list[_Match] = []
        for end, surface in self._automaton.iter(folded):
            start = end - len(surface) + 1
            if not _on_word_boundaries(folded, start, end + 1):
                continue
            span = (start, end + 1)
            words = _WORD.findall(surface)
            plain = all(w in self._vocabulary or w.isdigit() for w in words) if words else True
            found.append(_Match(span, surface, template_key(text, span) in self.templates, plain))
        return found

    def _anchored(self, text: str, folded: str) -> Link | None:
        """Read the entity off a known template's prefix and suffix (catches typos)."""
        squashed = _squash(folded).strip(_EDGE_PUNCT)
        best: Link | None = None
        for prefix, suffix in self._anchors:
            if not (squashed.startswith(prefix) and squashed.endswith(suffix)):
                continue
            middle = squashed[len(prefix) : len(squashed) - len(suffix)].strip()
            if not middle or len(prefix) + len(suffix) > len(squashed):
                continue
            ids, score = self._fuzzy(middle)
            if ids and (best is None or score > best.score):
                span = _locate(text, folded, middle)
                best = Link(ids[0], span, "template", score, tuple(ids), template_key(text, span))
                if score >= 1.0:
                    break
        return best

    def _residual_fuzzy(self, text: str, folded: str) -> Link:
        """Fuzzy-match what is left once template words are gone: a last resort."""
        words = [m for m in _WORD.finditer(folded) if m.group() not in self._vocabulary]
        if not words:
            return self._none("no KB entity in the question: name a person, film or other KB entity")
        start, end = words[0].start(), words[-1].end()
        ids, score = self._fuzzy(folded[start:end])
        if not ids:
            return self._none("no KB entity in the question: name a person, film or other KB entity")
        span = (start, end)
        return Link(ids[0], span, "fuzzy", score, tuple(ids), template_key(text, span))

    # --- helpers -------------------------------------------------------------------------

    def _from_match(self, text: str, match: _Match, method: Method, score: float) -> Link:
        ids = self._order(self._by_surface[match.surface], text[match.span[0] : match.span[1]])
        return Link(ids[0], match.span, method, score, tuple(ids), template_key(text, match.span))

    def _fuzzy(self, surface: str) -> tuple[list[int], float]:
        """Entities named `surface` exactly (score 1) or approximately (score = ratio / 100)."""
        surface = _squash(fold(surface)).strip()
        if surface in self._by_surface:
            return self._order(self._by_surface[surface], surface), 1.0
        query = default_process(surface)
        if not query:
            return [], 0.0
        hit = process.extractOne(query, self._fuzzy_keys, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF)
        if hit is None:
            return [], 0.0
        _, ratio, index = hit
        name = self._surfaces[index]
        return self._order(self._by_surface[name], name), ratio / 100.0

    def _order(self, ids: Sequence[int], written: str) -> list[int]:
        names, prior, degree = self.kb.names, self.topic_prior, self.kb.degree
        return sorted(ids, key=lambda i: (names[i] != written, -prior.get(i, 0), -int(degree[i]), i))

    @staticmethod
    def _none(reason: str) -> Link:
        return Link(None, None, "none", 0.0, (), None, reason)


def _on_word_boundaries(folded: str, start: int, end: int) -> bool:
    """A match must not cut a word: `Up` is not in `Upside`, `Her` is not in `where`."""
    if folded[start].isalnum() and start > 0 and folded[start - 1].isalnum():
        return False
    return not (folded[end - 1].isalnum() and end < len(folded) and folded[end].isalnum())


def _locate(text: str, folded: str, surface: str) -> tuple[int, int] | None:
    """Span of `surface` (folded, spaces squashed) in the original text."""
    pattern = r"\s+".join(re.escape(part) for part in surface.split())
    match = re.search(pattern, folded)
    return (match.start(), match.end()) if match else None
