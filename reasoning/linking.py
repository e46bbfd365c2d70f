"""Entity linking: which KB entity a question is about, and where it sits in the text.

The caller may name the entity (`Question.topic_entity`) or the text may mark it
(`[Ginger Rogers]`); otherwise the linker reads it off raw text. Every place a KB name
could sit is a candidate:

- exact: a KB name found in the folded question by an Aho-Corasick automaton (word
  boundaries kept: `Up` is not in `Upside`);
- partial: a person's surname (`Spielberg` -> Steven Spielberg) or a title without its
  leading article (`Karate Kid` -> The Karate Kid);
- template: the text between a training template's prefix and suffix (`who directed NE`),
  looked up exactly or fuzzily: this catches misspelt names in familiar wording;
- fuzzy: a few words around one that no question and no KB name explains (`Stven
  Spielberg`, `The Affars of Martha`), matched with rapidfuzz against a bounded set of
  names (`_FuzzyIndex`), so it stays fast.

Candidates are scored (`_Candidate.score`, the weights below) on what tells a topic from a
common word, all learnt from `qa_train` of both MetaQA variants (templates and their NTM
paraphrases) or from the KB, never from `qa_val`:

- wording: how close the question with the candidate masked is to a training template;
- role: whether topics in the same context in training ("directed by NE", "NE movies")
  have a role the entity has in the KB: subject of facts (a film), or object of which
  relation (a director, an actor, a tag, a year, ...);
- question words: a name made only of words training questions and English use anyway
  ("The Other", "Played", "Her", "nature") wins only when nothing better is there and the
  wording around it fits;
- typed case (in questions that show case) agreeing with the KB's spelling, length, being
  part of a longer name, being only part of a name, and how close a fuzzy match is.

The wording is weighed last, and only for candidates it could still lift to the top; a
masked question that is a training template costs a dictionary lookup, others a rapidfuzz
pass over the templates.

Names that differ only by case or accents ("Ralph Macchio" the actor, "ralph macchio" the
tag) are one surface form; its entities come back ordered by how their roles fit the
wording (the exact spelling counting extra), whether their roles are ever a topic's,
training frequency as topic entity and degree, so a caller that knows the relation it will
follow can still pick among them. When the question shows case and the typed case matches
some of them exactly, only those are offered.
"""

from __future__ import annotations

import bisect
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

import ahocorasick
import numpy as np
from rapidfuzz import fuzz, process
from rapidfuzz.utils import default_process

from reasoning.kb import KnowledgeBase
from reasoning.metaqa import HOPS, VARIANTS, bracket_span, qa_file, read_qa

MASK = "NE"
Method = Literal["given", "bracket", "exact", "partial", "template", "fuzzy", "none"]

FUZZY_CUTOFF = 85.0  # rapidfuzz ratio (0-100) below which a fuzzy match is no match
MIN_FUZZY_CHARS = 5  # shorter text is matched exactly only
FUZZY_CACHE = 16_384  # fuzzy lookups remembered (a few MB)
PARTIAL_SCORE = 0.9  # the link's confidence when only part of the name was typed
MAX_SAME_SURNAME = 10  # people offered for one surname, most likely first
MAX_ANCHORED = 4  # template prefix/suffix pairs whose middle is looked up, longest first
MAX_WINDOW = 5  # words in a stretch of text looked up fuzzily around an unknown word
INSIDE_RATIO = 0.9  # a fuzzy match this close makes the names within it parts of a longer one

# Candidate score weights (see `_Candidate.score`), set on `qa_train`, never on `qa_val`.
W_WORDING = 4.0  # × similarity in [0, 1] of the masked question to the nearest training template
W_PLAIN = -2.5  # made only of question words: "The Other", "Played", "Her"
W_CASE = 1.0  # ± typed case agrees / disagrees with the KB name (mixed-case questions only)
W_WORDS = 0.25  # per word of the name, up to four: "The Karate Kid, Part II" over "The Karate Kid"
W_FUZZY = -15.0  # × (1 - ratio): a 0.9 match costs 1.5
W_PARTIAL = -1.5  # a surname or a title without its article, not the whole name
W_INSIDE = -2.0  # part of a longer name typed as the KB writes it: "Wilson" in "Rita Wilson"
W_ROLE = 0.75  # × log(share of training topics in the same context that have a role it has)
MIN_SCORE = 0.0  # a candidate made only of question words needs this score to be a link
MIN_FUZZY_SCORE = -1.5  # and a misspelt one this: "snarkle" alone is not `Sparkle`
FEW_TRAINING_USES = 2  # a word seen in fewer training templates is not a question word
ROLE_SMOOTHING = 5.0  # pseudo-questions of the overall role shares added to each template's
MIN_FIT = math.exp(-2.0)  # role fits below this all cost the same
SPELLING_FIT = 4.0  # among namesakes, the one spelt exactly as typed counts its role fit × this
MIN_ROLE_SHARE = 0.01  # below this overall share a role (years, languages) goes last among namesakes

_WORD = re.compile(r"\w+")
_SPACES = re.compile(r"\s+")
_EDGE_PUNCT = " \t\n?!.,;:"
_ARTICLES = ("the ", "a ", "an ")
_ARTICLE_WORDS = frozenset(a.strip() for a in _ARTICLES)
# English function words: never a name on their own unless the wording vouches for them.
_FUNCTION_WORDS = """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each else ever every
    few for from further had has have having he her here hers herself him himself his how i if in
    into is it its itself just me more most my myself no nor not now of off on once one only or
    other others our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to together too under until up
    upon us very was we were what when where which while who whom whose why will with would you
    your yours yourself may might must shall can tell give show list find name named please know
    want get got another"""
# Words of questions about films that the training templates happen not to use.
_FILM_WORDS = """cast crew flick flicks starring actress actresses plot ratings imdb votes sequel tag
    tags tagged featuring features feature costar watch"""
_STOPWORDS = frozenset(_FUNCTION_WORDS.split() + _FILM_WORDS.split())


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


def _unaccent(text: str) -> str:
    """Accents dropped, case kept (`Amélie` -> `Amelie`)."""
    return text if text.isascii() else "".join(_ascii_letter(c) for c in text)


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


@lru_cache(maxsize=1)
def training_questions() -> tuple[tuple[str, str], ...]:
    """(template_key, topic entity name) of every packaged `qa_train` question, both variants.

    The linker learns its wording from these (about a second): MetaQA's templates and their
    NTM paraphrases, so "who are the players in NE" is as familiar as "who acted in NE".
    """
    pairs: list[tuple[str, str]] = []
    for variant in VARIANTS:
        for hop in HOPS:
            path = qa_file(hop, "train", variant)
            if not path.exists():
                continue
            for pair in read_qa(path):
                marked = bracket_span(pair.question)
                if marked is not None:
                    pairs.append((template_key(pair.question, (marked[0], marked[1])), marked[2]))
    return tuple(pairs)


@dataclass(frozen=True)
class Link:
    """The linker's verdict on one question."""

    entity: int | None  # KB id of the best entity, None when nothing matched
    span: tuple[int, int] | None  # where it sits in the text (brackets included)
    method: Method
    score: float  # in [0, 1]: 1 for a whole name, PARTIAL_SCORE for part of one, else the fuzzy ratio
    candidates: tuple[int, ...] = ()  # every entity with the same surface form, best first
    template: str | None = None  # template_key of the masked question
    reason: str | None = None  # why nothing was linked

    @property
    def found(self) -> bool:
        return self.entity is not None


@dataclass
class _Candidate:
    """One place a KB name could sit in the question, and what speaks for it."""

    span: tuple[int, int]
    ids: list[int]  # entities it names, best first
    method: Method
    ratio: float = 1.0  # fuzzy ratio in [0, 1]
    plain: bool = False  # made only of question words
    case: int = 0  # +1 typed case matches the name, -1 it does not, 0 nothing to tell
    words: int = 1
    inside: bool = False  # lies within a longer name that nothing speaks against
    wording: float | None = None  # W_WORDING × similarity + W_ROLE × role fit, once known
    template: str = ""

    def base(self) -> float:
        """Everything but the wording, which can add W_WORDING at most."""
        return (
            W_PLAIN * self.plain
            + W_CASE * self.case
            + W_WORDS * min(self.words, 4)
            + W_FUZZY * (1.0 - self.ratio)
            + W_PARTIAL * (self.method == "partial")
            + W_INSIDE * self.inside
        )

    def score(self) -> float:
        return self.base() + (self.wording or 0.0)


@dataclass
class EntityLinker:
    """Links questions to KB entities; build once, call `link` or `link_batch` many times."""

    kb: KnowledgeBase
    templates: Mapping[str, int] = field(default_factory=dict)  # template_key -> frequency
    topic_prior: Mapping[int, int] = field(default_factory=dict)  # entity id -> times a topic
    # (template_key, topic name) of training questions; None: the packaged qa_train files
    training: Sequence[tuple[str, str]] | None = None

    def __post_init__(self) -> None:
        self._by_surface: dict[str, list[int]] = {}
        for i, name in enumerate(self.kb.names):
            surface = fold(name).strip()
            if surface:
                self._by_surface.setdefault(surface, []).append(i)
        self._roles = _roles(self.kb)
        self._wording = _Wording(self._roles, self.kb, self.templates, self.training)
        self._question_words = self._wording.question_words
        self._partial = self._partial_names()
        self._automaton = ahocorasick.Automaton()
        for surface in self._by_surface.keys() | self._partial.keys():
            self._automaton.add_word(surface, surface)
        self._automaton.make_automaton()
        titles = [p for p in self._partial if " " in p and p not in self._by_surface]  # `karate kid`
        self._fuzzy_index = _FuzzyIndex(list(self._by_surface) + titles)

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
        candidates = self._exact(text, folded)
        if not any(c.template in self._wording.rows and not c.plain for c in candidates):
            candidates += self._anchored(text, folded, candidates)
            candidates += self._unexplained(text, folded, candidates)
        best = self._best(text, candidates)
        if best is None:
            return self._none("no KB entity in the question: name a person, film or other KB entity")
        score = {"exact": 1.0, "partial": PARTIAL_SCORE}.get(best.method, best.ratio)
        return Link(best.ids[0], best.span, best.method, score, tuple(best.ids), best.template)

    # --- candidates ----------------------------------------------------------------------

    def _exact(self, text: str, folded: str) -> list[_Candidate]:
        """Every KB name, surname or article-less title on word boundaries of the question."""
        found: list[_Candidate] = []
        for end, surface in self._automaton.iter(folded):
            start = end - len(surface) + 1
            if not _on_word_boundaries(folded, start, end + 1):
                continue
            span = (start, end + 1)
            if surface in self._by_surface:
                found.append(self._candidate(text, span, self._by_surface[surface], "exact"))
            if surface in self._partial:
                found.append(self._candidate(text, span, self._partial[surface], "partial"))
        return found

    def _anchored(self, text: str, folded: str, exact: Sequence[_Candidate]) -> list[_Candidate]:
        """The text between a training template's prefix and suffix, looked up (typos too);
        the MAX_ANCHORED longest templates that fit are tried."""
        squashed, where = _squashed(folded)
        tried: set[str] = set()
        found: list[_Candidate] = []
        for prefix, suffix, length in self._wording.anchors(squashed):
            if len(tried) >= MAX_ANCHORED:
                break
            if length >= len(squashed) or not (squashed.startswith(prefix) and squashed.endswith(suffix)):
                continue
            start, end = len(prefix), len(squashed) - len(suffix)
            middle = squashed[start:end].strip()
            if not middle or middle in tried or middle in self._by_surface:
                continue  # exact names are candidates already
            tried.add(middle)
            start += squashed[start:end].index(middle)
            span = (where[start], where[start + len(middle) - 1] + 1)
            if not self._explained(folded, span, exact):
                found += self._fuzzy_candidates(text, span, middle, "template")
        return found

    def _unexplained(self, text: str, folded: str, exact: Sequence[_Candidate]) -> list[_Candidate]:
        """Names around a word that neither a question nor a KB name explains, looked up
        fuzzily: every window of up to MAX_WINDOW words that holds it (`The Affars of Martha`)."""
        found: list[_Candidate] = []
        tried: set[tuple[int, int]] = set()
        words = list(_WORD.finditer(folded))
        for i, word in enumerate(words):
            if word.group() in self._question_words or self._explained(folded, word.span(), exact):
                continue
            for a in range(max(0, i - MAX_WINDOW + 1), i + 1):
                for b in range(i, min(len(words), a + MAX_WINDOW)):
                    span = (words[a].start(), words[b].end())
                    if span not in tried:
                        tried.add(span)
                        found += self._fuzzy_candidates(text, span, folded[span[0] : span[1]], "fuzzy")
        return found

    def _explained(self, folded: str, span: tuple[int, int], exact: Sequence[_Candidate]) -> bool:
        """Whether one name that is no question word holds every content word of `span`."""
        words = _WORD.finditer(folded, span[0], span[1])
        content = [w.span() for w in words if w.group() not in self._question_words]
        names = [c.span for c in exact if not c.plain]
        return any(all(s <= a and b <= e for a, b in content) for s, e in names)

    def _fuzzy_candidates(self, text: str, span: tuple[int, int], surface: str, method: Method) -> list[_Candidate]:
        ids, ratio = self._fuzzy(surface)
        if not ids:
            return []
        candidate = self._candidate(text, span, ids, method)
        candidate.ratio = ratio
        if ratio < 1.0:
            candidate.case = 0  # a misspelt name says nothing by its case
        return [candidate]

    def _candidate(self, text: str, span: tuple[int, int], ids: Sequence[int], method: Method) -> _Candidate:
        typed = text[span[0] : span[1]]
        words = _WORD.findall(fold(typed))
        plain = all(w in self._question_words for w in words)
        ordered, case = self._by_case(text, span, typed, ids, method)
        return _Candidate(
            span, ordered, method, plain=plain, case=case, words=len(words), template=template_key(text, span)
        )

    # --- choosing ------------------------------------------------------------------------

    def _best(self, text: str, candidates: list[_Candidate]) -> _Candidate | None:
        """The highest score; the wording is weighed only where it can still change the winner.

        Candidates made of question words, or misspelt, need a score above a floor."""
        _mark_inside(candidates)
        best: _Candidate | None = None
        best_score = -math.inf
        for c in sorted(candidates, key=lambda c: -c.base()):
            if c.base() + W_WORDING <= best_score:
                break  # no wording can lift this one (or any after it) over the best
            similarity = self._wording.nearest(c.template)
            fits = self._wording.role_fit(c.template, c.ids)
            c.wording = W_WORDING * similarity + W_ROLE * math.log(max(fits))
            c.ids = self._by_fit(c.ids, fits, text[c.span[0] : c.span[1]])
            if c.score() > best_score and c.score() >= self._floor(c):
                best, best_score = c, c.score()
        return best

    @staticmethod
    def _floor(c: _Candidate) -> float:
        """The least score that makes a link of `c`."""
        if c.plain:
            return MIN_SCORE
        return MIN_FUZZY_SCORE if c.ratio < 1.0 else -math.inf

    def _by_fit(self, ids: Sequence[int], fits: Sequence[float], typed: str) -> list[int]:
        """Namesakes by how well their roles fit the wording, an exact spelling counting as
        SPELLING_FIT times the fit ("which movies are about nature": the tag `nature`)."""
        names = self.kb.names
        weight = [f * (SPELLING_FIT if names[i] == typed else 1.0) for i, f in zip(ids, fits)]
        return [i for _, i in sorted(zip(weight, ids), key=lambda pair: -pair[0])]  # stable

    def _by_case(
        self, text: str, span: tuple[int, int], typed: str, ids: Sequence[int], method: Method
    ) -> tuple[list[int], int]:
        """`ids` ordered, with the typed case deciding first when the question shows case."""
        if not _shows_case(text):
            return self._order(ids, typed), 0
        names = self.kb.names
        at_start = not text[: span[0]].strip()
        cases = [_same_case(typed, _typed_part(names[i], method, typed), at_start) for i in ids]
        case = max(cases)
        return self._order([i for i, c in zip(ids, cases) if c == case or case < 0], typed), case

    def _fuzzy(self, surface: str) -> tuple[list[int], float]:
        """Entities named `surface` exactly (score 1) or approximately (score = ratio / 100)."""
        surface = _squash(fold(surface)).strip()
        if surface in self._by_surface:
            return self._order(self._by_surface[surface], surface), 1.0
        hit = self._fuzzy_index.best(default_process(surface))
        if hit is None:
            return [], 0.0
        name, ratio = hit
        return self._order(self._by_surface.get(name) or self._partial[name], name), ratio / 100.0

    def _order(self, ids: Sequence[int], written: str | None) -> list[int]:
        """Exact spelling first, then roles that are topics at all, training frequency, degree."""
        names, prior, degree, rare = self.kb.names, self.topic_prior, self.kb.degree, self._wording.rare_role
        return sorted(ids, key=lambda i: (names[i] != written, rare(i), -prior.get(i, 0), -int(degree[i]), i))

    def _partial_names(self) -> dict[str, list[int]]:
        """Surnames of people (`spielberg`) and titles without their article (`karate kid`)."""
        partial: dict[str, list[int]] = {}
        films = self._roles[:, 0]  # subjects of facts: titles, whose last word is no surname
        for surface, ids in self._by_surface.items():
            for article in _ARTICLES:
                if surface.startswith(article) and len(surface) > len(article) + 2:
                    partial.setdefault(surface[len(article) :], []).extend(ids)
        for i, name in enumerate(self.kb.names):
            parts = name.split()
            if len(parts) >= 2 and not films[i] and _is_surname(parts[-1]):
                partial.setdefault(fold(parts[-1]), []).append(i)
        return {s: self._order(ids, None)[:MAX_SAME_SURNAME] for s, ids in partial.items()}

    @staticmethod
    def _none(reason: str) -> Link:
        return Link(None, None, "none", 0.0, (), None, reason)


class _FuzzyIndex:
    """rapidfuzz over a bounded set of names: those whose first (after any article) or last
    word starts with the same letter as the query's (a typo seldom hits both), and of about
    the query's length (`fuzz.ratio` ≥ 85 needs the shorter string to be at least 74 % of
    the longer)."""

    def __init__(self, surfaces: Sequence[str]) -> None:
        buckets: dict[str, list[tuple[str, str]]] = {}
        for surface in surfaces:
            key = default_process(surface)
            for letter in _initials(key):
                buckets.setdefault(letter, []).append((key, surface))
        self._buckets = {}
        for letter, keyed in buckets.items():
            keyed.sort(key=lambda pair: (len(pair[0]), pair))
            self._buckets[letter] = ([k for k, _ in keyed], [s for _, s in keyed], [len(k) for k, _ in keyed])
        self.best = lru_cache(maxsize=FUZZY_CACHE)(self._best)  # the same unknown words come back

    def _best(self, query: str) -> tuple[str, float] | None:
        """The closest surface and its ratio (0-100), or None below FUZZY_CUTOFF. Short queries
        and numbers are not looked up: one edit there makes another name (`3000` ~ `300`)."""
        if len(query) < MIN_FUZZY_CHARS or query.replace(" ", "").isdigit():
            return None
        best: tuple[str, float] | None = None
        share = FUZZY_CUTOFF / (200.0 - FUZZY_CUTOFF)  # ratio = 2m / (a + b) ≥ c  ⇒  b ≥ a·c / (2 - c)
        for letter in _initials(query):
            keys, surfaces, lengths = self._buckets.get(letter, ((), (), ()))
            lo = bisect.bisect_left(lengths, math.floor(len(query) * share))
            hi = bisect.bisect_right(lengths, math.ceil(len(query) / share))
            cutoff = max(FUZZY_CUTOFF, best[1] if best else 0.0)
            hit = process.extractOne(query, keys[lo:hi], scorer=fuzz.ratio, score_cutoff=cutoff)
            if hit is not None and (best is None or hit[1] > best[1]):
                best = (surfaces[lo + hit[2]], hit[1])
        return best


def _initials(key: str) -> list[str]:
    """`f` + the first letter of the first word after any article, `l` + that of the last
    word: `the affairs of martha` -> ["fa", "lm"], as for `affairs of martha`."""
    words = key.split()
    if len(words) > 1 and words[0] in _ARTICLE_WORDS:
        words = words[1:]
    return [f"f{words[0][0]}", f"l{words[-1][0]}"] if words else []


def _mark_inside(candidates: list[_Candidate]) -> list[_Candidate]:
    """Flag candidates that lie within a longer name typed as the KB writes it (or, where the
    question shows no case, a longer name that is no question word; or a close fuzzy match
    of one): longest match, unless the typing says otherwise ("the Ghost actor" is about
    `Ghost`, not `The Ghost`)."""
    outer = [c.span for c in candidates if (c.case > 0 or (c.case == 0 and not c.plain)) and c.ratio >= INSIDE_RATIO]
    for c in candidates:
        (s, e) = c.span
        c.inside = any(a <= s and e <= b and (a, b) != (s, e) for a, b in outer)
    return candidates


class _Wording:
    """What training questions teach about the words around a topic entity: which wordings
    (templates) occur, which words are question words, and what roles their topics play."""

    def __init__(
        self,
        roles: np.ndarray,
        kb: KnowledgeBase,
        templates: Iterable[str],
        training: Sequence[tuple[str, str]] | None,
    ) -> None:
        pairs = training_questions() if training is None else training
        self.keys = list(dict.fromkeys([key for key, _ in pairs] + list(templates)))
        self.rows = {key: row for row, key in enumerate(self.keys)}
        self._roles = roles
        self._shares = self._role_shares(roles, kb, pairs)
        self._overall = self._shares[()]
        self.question_words = _STOPWORDS | _question_words(self.keys)
        self._anchors = _anchors(self.keys)

    def _role_shares(
        self, roles: np.ndarray, kb: KnowledgeBase, pairs: Sequence[tuple[str, str]]
    ) -> dict[tuple, np.ndarray]:
        """Per context of the entity (`_contexts`: none, the word either side, two words), the
        share of training topics in it that have each role, smoothed towards the wider context."""
        known = [(self.rows[key], i) for key, name in pairs if (i := kb.entity_id(name)) is not None]
        per_template = np.zeros((len(self.keys), roles.shape[1] + 1))  # role counts, then questions
        if known:
            rows, ids = (np.array(column) for column in zip(*known))
            np.add.at(per_template, rows, np.hstack([roles[ids], np.ones((len(ids), 1))]))
        counts: dict[tuple, np.ndarray] = {}
        for row in np.flatnonzero(per_template[:, -1]):
            for context in _contexts(self.keys[row]):
                counts[context] = counts.get(context, 0.0) + per_template[row]
        shares: dict[tuple, np.ndarray] = {}
        for context in sorted(counts, key=len):  # the wider context is smoothed first
            wider = shares.get(context[:-1], np.ones(roles.shape[1]))
            total = counts[context]
            shares[context] = (total[:-1] + ROLE_SMOOTHING * wider) / (total[-1] + ROLE_SMOOTHING)
        if () not in shares:
            shares[()] = np.ones(roles.shape[1])
        return shares

    def nearest(self, template: str) -> float:
        """Similarity in [0, 1] of the closest training wording; 1 when it is one."""
        if template in self.rows:
            return 1.0
        hit = process.extractOne(template, self.keys, scorer=fuzz.ratio, score_cutoff=50.0)
        return 0.0 if hit is None else (hit[1] / 100.0 - 0.5) * 2.0

    def role_fit(self, template: str, ids: Sequence[int]) -> list[float]:
        """Per entity, the share of training topics in the narrowest known context of `template`
        that have a role the entity has ("directed by NE": a director's role)."""
        shares = self._overall
        for context in _contexts(template)[1:]:
            if context not in self._shares:
                break
            shares = self._shares[context]
        return [max(float(shares[self._roles[i]].max(initial=0.0)), MIN_FIT) for i in ids]

    def rare_role(self, entity: int) -> bool:
        """Whether no role of the entity is a topic's role in MIN_ROLE_SHARE of training."""
        return float(self._overall[self._roles[entity]].max(initial=0.0)) < MIN_ROLE_SHARE

    def anchors(self, question: str) -> list[tuple[str, str, int]]:
        """(prefix, suffix, their length) of the one-entity templates that could fit around a
        name in `question` (squashed): same first word or none, same last word or none."""
        first, last = _edge_words(question)
        keys = [(first, last), (first, ""), ("", last), ("", "")]
        anchors = [a for key in keys for a in self._anchors.get(key, [])]
        return sorted(anchors, key=lambda a: -a[2])


def _contexts(template: str) -> list[tuple]:
    """The entity's contexts in a template, widest first: none, then the word either side
    (`by NE`), then two words either side (`directed by NE`); each key is the wider one with
    one more element, so `key[:-1]` is the context it is smoothed towards."""
    left, _, right = template.partition(MASK)
    before, after = _WORD.findall(left), _WORD.findall(right)
    one = (tuple(before[-1:]), tuple(after[:1]))
    two = (tuple(before[-2:]), tuple(after[:2]))
    return [(), (one,), (one, two)]


def _roles(kb: KnowledgeBase) -> np.ndarray:
    """(entities, 1 + base relations) bool: column 0 the entity is a subject (a film in
    MetaQA), column 1 + r it is the object of relation r (a director, a tag, a year, ...)."""
    base = kb.num_base_relations
    has = kb.out_relations.toarray()
    return np.hstack([has[:, :base].any(axis=1, keepdims=True), has[:, base:]])


def _question_words(templates: Iterable[str]) -> frozenset[str]:
    """Words of the training templates (the entity masked), seen in a few templates at least."""
    uses: Counter[str] = Counter()
    for template in templates:
        uses.update({w for w in _WORD.findall(template) if w != MASK})
    return frozenset(w for w, n in uses.items() if n >= FEW_TRAINING_USES and not w.isdigit())


def _anchors(templates: Iterable[str]) -> dict[tuple[str, str], list[tuple[str, str, int]]]:
    """(prefix, suffix, their length) of each one-entity template, by the prefix's first word
    and the suffix's last ("" where the template starts or ends with the entity)."""
    pairs = {tuple(t.split(MASK, 1)) for t in templates if t.count(MASK) == 1}
    by_edges: dict[tuple[str, str], list[tuple[str, str, int]]] = {}
    for prefix, suffix in sorted(pairs):
        key = (_edge_words(prefix)[0], _edge_words(suffix)[1])
        by_edges.setdefault(key, []).append((prefix, suffix, len(prefix) + len(suffix)))
    return by_edges


def _edge_words(text: str) -> tuple[str, str]:
    """First and last space-separated word ("" for none): `who directed ` -> ("who", "directed")."""
    words = text.split()
    return (words[0], words[-1]) if words else ("", "")


def _is_surname(word: str) -> bool:
    return len(word) >= 3 and word[0].isupper() and word.isalpha()


def _shows_case(text: str) -> bool:
    """Mixed case: the typed case of a name means something (not all lower or all upper)."""
    return any(c.isupper() for c in text) and any(c.islower() for c in text)


def _typed_part(name: str, method: Method, typed: str) -> str:
    """The part of the KB name that was typed: all of it, or the surname / article-less title."""
    if method != "partial":
        return name
    return name[len(name) - len(typed) :]


def _same_case(typed: str, name: str, at_start: bool) -> int:
    """1 typed as the KB writes it (accents aside), 0 but for a sentence's first capital
    (which says nothing), -1 otherwise."""
    typed, name = _unaccent(typed), _unaccent(name)
    if typed == name:
        return 1
    return 0 if at_start and typed[1:] == name[1:] and typed[:1] == name[:1].upper() else -1


def _on_word_boundaries(folded: str, start: int, end: int) -> bool:
    """A match must not cut a word: `Up` is not in `Upside`, `Her` is not in `where`."""
    if folded[start].isalnum() and start > 0 and folded[start - 1].isalnum():
        return False
    return not (folded[end - 1].isalnum() and end < len(folded) and folded[end].isalnum())


def _squashed(folded: str) -> tuple[str, list[int]]:
    """The question as templates are written (spaces squashed, end marks stripped) and, per
    character of it, its offset in `folded`."""
    chars: list[str] = []
    where: list[int] = []
    for at, char in enumerate(folded):
        if char.isspace():
            if not chars or chars[-1] == " ":
                continue
            char = " "
        chars.append(char)
        where.append(at)
    squashed = "".join(chars)
    stripped = squashed.rstrip(_EDGE_PUNCT)
    start = len(stripped) - len(stripped.lstrip(_EDGE_PUNCT))
    return stripped[start:], where[start : len(stripped)]
