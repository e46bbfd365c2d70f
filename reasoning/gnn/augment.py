"""Phrasings a person brings, applied on the fly to the masked questions the encoder trains on.

Training sees each template a few thousand times; people never type it the same way twice.
Every example drawn for the encoder goes through `Augmenter.__call__`, which applies each
enabled group with probability `p` (and leaves an example clean with probability `clean`),
then normalises the text the way the reasoner does (`reasoning.linking.template_key`), so
training inputs and served inputs cannot drift apart. Groups:

- `synonyms`:    relation words swapped for others that mean the same (director/filmmaker,
                 starred/appeared/acted, written/penned, released/came out, genre/kind of film,
                 language/spoken in, tags/keywords, movies/pictures …);
- `order`:       the same question in another word order (`NE: who directed it`,
                 `the director of NE` ↔ `NE's director`, `which films did NE act in` →
                 `NE acted in which films`);
- `typos`:       a letter swapped, dropped, doubled or mistyped in a word that is not the entity;
- `fillers`:     `hey`, `can you tell me`, `please`, `I wonder` … before or after;
- `punctuation`: marks dropped, added or moved (`co-starred` → `co starred`, `NE's` → `NEs`),
                 HTML entities of the NTM data (`&apos;`) decoded.

Casing is not a group: `template_key` folds case and the tokenizer is uncased, so no casing
change can reach the encoder (it matters to the linker only).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

import numpy as np

from reasoning.linking import MASK, template_key

GROUPS: tuple[str, ...] = ("synonyms", "order", "typos", "fillers", "punctuation")

# Each row: words that name the same thing in a question, any of which may replace another.
SYNONYMS: tuple[tuple[str, ...], ...] = (
    ("directed", "made", "helmed", "shot"),
    ("direct", "make", "helm"),
    ("director", "filmmaker", "film maker", "movie director", "helmer"),
    ("directors", "filmmakers", "film makers", "movie directors"),
    ("written", "penned", "scripted", "authored"),
    ("wrote", "penned", "scripted", "authored"),
    ("write", "pen", "script"),
    ("writer", "screenwriter", "scriptwriter", "script writer", "author", "scribe"),
    ("writers", "screenwriters", "scriptwriters", "script writers", "authors", "scribes"),
    ("starred", "acted", "appeared", "played", "featured"),
    ("starred in", "acted in", "appeared in", "played in", "was in"),
    ("star", "act", "appear", "play"),
    ("actor", "performer", "cast member", "star", "actress"),
    ("actors", "performers", "cast members", "cast", "stars", "actresses"),
    ("co-starred with", "acted alongside", "appeared with", "acted together with"),
    ("movies", "films", "pictures", "flicks", "titles"),
    ("movie", "film", "picture", "flick", "title"),
    ("released", "out", "put out", "premiered", "first shown"),
    ("release", "come out", "premiere"),
    ("release years", "years of release", "release dates", "premiere years"),
    ("release year", "year of release", "release date", "premiere year"),
    ("genre", "kind of film", "type of movie", "category", "style"),
    ("genres", "kinds of film", "types of movie", "categories", "styles"),
    ("language", "tongue", "spoken language"),
    ("languages", "tongues", "spoken languages"),
    ("spoken", "used", "talked", "heard"),
    ("words describe", "tags describe", "keywords describe", "terms describe", "labels fit"),
    ("topics", "tags", "keywords", "subjects", "themes"),
    ("rating", "score", "imdb rating", "imdb score"),
    ("popular", "well known", "voted on", "famous"),
    ("share", "have in common", "also have"),
    ("also", "too", "as well"),
    ("who", "which person", "who exactly"),
    ("what", "which"),
)
FILLER_BEFORE = (
    "hey",
    "hi",
    "hello,",
    "can you tell me",
    "could you tell me",
    "please tell me",
    "tell me",
    "i wonder",
    "i was wondering",
    "do you know",
    "any idea",
    "quick question:",
    "ok so",
    "so",
    "i'd like to know",
    "help me out,",
    "i need to know",
    "um",
)
FILLER_AFTER = ("please", "thanks", "thank you", "pls", "if you know", "i wonder", "anyone?", "again", "btw")
# Keys next to each letter on a QWERTY keyboard: where a finger slips to.
KEYBOARD = {
    "q": "wa", "w": "qes", "e": "wrd", "r": "etf", "t": "ryg", "y": "tuh", "u": "yij", "i": "uok", "o": "ipl",
    "p": "ol", "a": "qsz", "s": "awdx", "d": "sefc", "f": "drgv", "g": "fthb", "h": "gyjn", "j": "hukm",
    "k": "jil", "l": "kop", "z": "asx", "x": "zdc", "c": "xfv", "v": "cgb", "b": "vhn", "n": "bjm", "m": "nk",
}  # fmt: skip
PRONOUNS = ("it", "that", "them", "this", "that one")

_WORD = re.compile(r"[a-z]+")
_SYNONYM_PATTERNS = [
    (re.compile(r"\b" + re.escape(word) + r"\b"), row) for row in SYNONYMS for word in row
]  # longer phrases are tried first below, so `starred in` wins over `starred`
_SYNONYM_PATTERNS.sort(key=lambda pair: -len(pair[0].pattern))
_POSSESSIVE_OF = re.compile(r"\b(?:the )?(\w+) of (?:the (?:movie|film) )?NE\b")
_POSSESSIVE = re.compile(r"\bNE ?'s (\w+)")
_NAMED_MASK = re.compile(r"\b(?:the (?:movie|film|actor|director|writer|screenwriter|person) )?NE\b")
_ENTITY_WORDS = frozenset(["apos", "quot", "amp"])  # the NTM data's `&apos;`: not a word to misspell
_WH_AUX = re.compile(r"^(which|what) (\w+) (?:did|does|do|were|was|are|is) (.+)$")


class Augmenter:
    """Masked question → a phrasing of it a person might type, normalised like `template_key`."""

    def __init__(
        self,
        groups: Sequence[str] = GROUPS,
        rng: np.random.Generator | None = None,
        p: float = 0.4,
        clean: float = 0.25,
    ) -> None:
        unknown = set(groups) - set(GROUPS)
        if unknown:
            raise ValueError(f"unknown augmentation groups {sorted(unknown)}: choose from {', '.join(GROUPS)}")
        self.groups = tuple(g for g in GROUPS if g in groups)
        self.rng = rng or np.random.default_rng(0)
        self.p = p
        self.clean = clean

    def __call__(self, text: str) -> str:
        if not self.groups or self.rng.random() < self.clean:
            return text
        for group in self.groups:
            if self.rng.random() < self.p:
                text = getattr(self, f"_{group}")(text)
        return normalise(text)

    # --- groups --------------------------------------------------------------------------

    def _synonyms(self, text: str) -> str:
        """Swap one or two relation words for another of their row."""
        for _ in range(1 + int(self.rng.random() < 0.5)):
            found = [(m, row) for pattern, row in _SYNONYM_PATTERNS for m in pattern.finditer(text)]
            if not found:
                break
            match, row = found[self.rng.integers(len(found))]
            other = [w for w in row if w != match.group()]
            text = text[: match.start()] + str(self.rng.choice(other)) + text[match.end() :]
        return text

    def _order(self, text: str) -> str:
        """One of: the entity topicalised, the possessive turned around, the wh-phrase moved last."""
        options = []
        if text.count(MASK) == 1 and not text.startswith(MASK):
            pronoun = str(self.rng.choice(PRONOUNS))
            rest = _NAMED_MASK.sub(pronoun, text)
            options.append(f"{MASK}{self.rng.choice([':', ',', ' -', ''])} {rest}")
        if _POSSESSIVE_OF.search(text):
            options.append(
                _POSSESSIVE_OF.sub(lambda m: f"{MASK}{self.rng.choice([chr(39) + 's', ''])} {m.group(1)}", text)
            )
        if _POSSESSIVE.search(text):
            options.append(_POSSESSIVE.sub(lambda m: f"the {m.group(1)} of {MASK}", text))
        if m := _WH_AUX.match(text):
            options.append(f"{m.group(3)} {m.group(1)} {m.group(2)}")
        return str(options[self.rng.integers(len(options))]) if options else text

    def _typos(self, text: str) -> str:
        """One or two edits, each inside a word of 3+ letters that is not the mask."""
        for _ in range(1 + int(self.rng.random() < 0.3)):
            words = [w for w in _WORD.finditer(text) if len(w.group()) >= 3 and w.group() not in _ENTITY_WORDS]
            if not words:
                break
            m = words[self.rng.integers(len(words))]
            text = text[: m.start()] + self._typo(m.group()) + text[m.end() :]
        return text

    def _typo(self, word: str) -> str:
        i = int(self.rng.integers(len(word) - 1))
        kind = self.rng.integers(4)
        if kind == 0:  # swap neighbours
            return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        if kind == 1:  # drop
            return word[:i] + word[i + 1 :]
        if kind == 2:  # double
            return word[: i + 1] + word[i] + word[i + 1 :]
        near = KEYBOARD.get(word[i], word[i])  # the key next to it
        return word[:i] + near[self.rng.integers(len(near))] + word[i + 1 :]

    def _fillers(self, text: str) -> str:
        before, after = self.rng.random() < 0.7, self.rng.random() < 0.4
        if before:
            text = f"{self.rng.choice(FILLER_BEFORE)} {text}"
        if after or not before:
            text = f"{text} {self.rng.choice(FILLER_AFTER)}"
        return text

    def _punctuation(self, text: str) -> str:
        text = html.unescape(text)
        kind = self.rng.integers(3) if re.search(r"[-,'’]", text) else 1 + self.rng.integers(2)
        if kind == 0:  # marks dropped, words kept apart
            return re.sub(r"[-,'’]", lambda m: " " if m.group() == "-" else "", text)
        if kind == 1:  # a comma after the first or second word
            words = text.split(" ")
            at = int(self.rng.integers(1, 3))
            if len(words) > at:
                words[at - 1] += ","
            return " ".join(words)
        return text + str(self.rng.choice(["?", "??", " ?", ".", "!"]))  # stripped again by normalise


def normalise(text: str) -> str:
    """The text as `template_key` hands it to the encoder (the mask kept as it is)."""
    at = text.find(MASK)
    if at < 0:
        return template_key(text, None)
    return template_key(text, (at, at + len(MASK)))
