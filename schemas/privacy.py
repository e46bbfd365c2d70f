"""Scrubbing personal data out of free text before it is stored or exported.

`scrub(text)` replaces emails, phone numbers, card numbers, IP addresses, IBANs and US
social security numbers with typed placeholders (`[EMAIL]`, `[PHONE]`, `[CARD]`, `[IP]`,
`[IBAN]`, `[SSN]`). Every detector finds candidates with a loose pattern and keeps only
those that pass the real check (Luhn, IBAN mod 97, the SSN rules, `ipaddress`, Google's
phone metadata through `phonenumbers`), so years, ratings, dates and titles with numbers
stay as they are. Detectors run in a fixed order: the checksummed kinds first, phones
last, because a phone matcher would otherwise claim the digits of a card or an IBAN.

Pure (no I/O), so it lives with the contracts: the feedback agent and replay scrub feedback
(`scrub_feedback`), and every answer row scrubs its question text (`schemas.rows.answer_row`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator

import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum import isbn as stdnum_isbn
from stdnum.us import ssn as stdnum_ssn

from schemas.feedback import Feedback

# National formats are read as these countries would write them; international (+CC) and
# 00-prefixed numbers are found whatever the region. Order: most users first.
PHONE_REGIONS = ("US", "GB", "DE", "FR", "IN", "AU", "CN", "JP", "BR", "ES", "IT", "NL", "MX", "RU", "CH", "SE", "PL")
MIN_PHONE_DIGITS = 7
PHONE_WINDOW = 48  # characters: longer than any written phone number, so every one fits a window
PHONE_WINDOW_BUDGET = 8  # windows per text (or per feedback record) given to the full matcher
MAX_TRIES = 4  # candidates the matcher may try per window and region

_EMAIL = re.compile(r"(?<![\w.%+'-])[\w.%+-][\w.%+'-]*@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}")
_EMAIL_SPELLED = re.compile(  # "jane [at] example [dot] com"
    r"(?<![\w.+'-])[\w.+-][\w.+'-]*\s*[\[(<{]\s*at\s*[\])>}]\s*[\w-]+"
    r"(?:\s*[\[(<{]\s*dot\s*[\])>}]\s*[\w-]+)+",
    re.IGNORECASE,
)
_SPELLED_AT = re.compile(r"[\[(<{]\s*at\s*[\])>}]", re.IGNORECASE)
_IBAN = re.compile(r"(?<![\w])[A-Za-z]{2}\d{2}(?:[ ]?[A-Za-z0-9]{1,4}){3,9}(?![\w])")
_DIGIT_RUN = re.compile(r"(?<![\w.,/+-])[1-9]\d*(?:[ -]\d+)*(?![\w]|[.,/-]\d)")
_SSN = re.compile(r"(?<![\w-])(\d{3})([ -]?)(\d{2})\2(\d{4})(?![\w-])")
_SSN_LABEL = re.compile(r"\b(?:ssn|social security(?: number| no\.?)?)\W{0,3}$", re.IGNORECASE)
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{1,4})?(?:%\w+)?(?![\w:]|\.\d)"
)
_DATE = re.compile(r"\(?(?:\d{1,2}([./-])\d{1,2}\1\d{2}(?:\d{2})?|\d{4}([./-])\d{1,2}\2\d{1,2})")
_ISBN_LABEL = re.compile(r"isbn(?:-1[03])?[\s:]*$", re.IGNORECASE)
# Digits and the punctuation people put between them when they write a phone number.
_PHONE_RUN = re.compile(r"[+(\[]?\d[\d\s().\[\]/~\u2010-\u2015\u2212\uff0d-]*")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")


def _sub(pattern: re.Pattern[str], text: str, keep: Callable[[re.Match[str]], str | None]) -> str:
    """Replace each match by what `keep` returns (None: leave the match as it was)."""

    def repl(m: re.Match[str]) -> str:
        out = keep(m)
        return m.group(0) if out is None else out

    return pattern.sub(repl, text)


def _email(text: str) -> str:
    if "@" in text:
        text = _EMAIL.sub("[EMAIL]", text)
    if _SPELLED_AT.search(text):
        text = _EMAIL_SPELLED.sub("[EMAIL]", text)
    return text


def _iban_span(tokens: list[str]) -> int:
    """How many leading space-separated tokens form a valid IBAN (0: none)."""
    for n in range(len(tokens), 0, -1):
        if stdnum_iban.is_valid("".join(tokens[:n])):
            return n
    return 0


def _iban(text: str) -> str:
    def keep(m: re.Match[str]) -> str | None:
        tokens = m.group(0).split(" ")
        n = _iban_span(tokens)
        return None if n == 0 else "[IBAN]" + (" " + " ".join(tokens[n:]) if n < len(tokens) else "")

    return _sub(_IBAN, text, keep)


_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def _luhn_ok(digits: str) -> bool:
    """The Luhn check, inlined: stdnum's validating version is 20x slower on hostile runs."""
    odd = sum(ord(c) - 48 for c in digits[-1::-2])
    return (odd + sum(_DOUBLED[ord(c) - 48] for c in digits[-2::-2])) % 10 == 0


def _groups_luhn(groups: list[str]) -> tuple[int, int] | None:
    """The longest run of whole digit groups with 13–19 digits that passes Luhn.

    Cards are written whole or in groups of 3 to 6 digits (4-4-4-4, 4-6-5), so single
    digits never start or join a card, which keeps "1 2 3 4 …" linear.
    """
    best: tuple[int, int] | None = None
    for i in range(len(groups)):
        digits = ""
        for j in range(i, min(len(groups), i + 5)):
            if len(groups[j]) < 3:
                break
            digits += groups[j]
            if len(digits) > 19:
                break
            longer = best is None or (j - i) > (best[1] - best[0])
            if len(digits) >= 13 and _luhn_ok(digits) and not _is_isbn13(digits) and longer:
                best = (i, j)
    return best


def _is_isbn13(digits: str) -> bool:
    return len(digits) == 13 and digits.startswith(("978", "979")) and stdnum_isbn.is_valid(digits)


def _card_spans(groups: list[str], lo: int, hi: int) -> list[tuple[int, int]]:
    """Every card in groups[lo:hi], as (first, last) group indices, left to right."""
    found = _groups_luhn(groups[lo:hi])
    if found is None:
        return []
    i, j = found[0] + lo, found[1] + lo
    return _card_spans(groups, lo, i) + [(i, j)] + _card_spans(groups, j + 1, hi)


def _card(text: str) -> str:
    def keep(m: re.Match[str]) -> str | None:
        run = m.group(0)
        groups, seps = re.split(r"[ -]", run), re.findall(r"[ -]", run) + [""]
        if sum(len(g) for g in groups) < 13:
            return None
        spans = _card_spans(groups, 0, len(groups))
        if not spans:
            return None
        out, k = [], 0
        for i, j in spans:
            out.append("".join(g + s for g, s in zip(groups[k:i], seps[k:i])) + "[CARD]" + seps[j])
            k = j + 1
        return "".join(out) + "".join(g + s for g, s in zip(groups[k:], seps[k:]))

    return _sub(_DIGIT_RUN, text, keep)


def _ssn(text: str) -> str:
    def keep(m: re.Match[str]) -> str | None:
        if not stdnum_ssn.is_valid(m.group(1) + m.group(3) + m.group(4)):
            return None
        if not m.group(2) and not _SSN_LABEL.search(text[max(0, m.start() - 40) : m.start()]):
            return None  # nine bare digits are an SSN only where the text says so
        return "[SSN]"

    return _sub(_SSN, text, keep)


def _ip(text: str) -> str:
    def keep6(m: re.Match[str]) -> str | None:
        candidate = m.group(0)
        if not re.search(r"[0-9A-Fa-f]", candidate):
            return None
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            return None
        return "[IP]"

    def keep4(m: re.Match[str]) -> str | None:
        try:
            ipaddress.IPv4Address(m.group(0))
        except ValueError:
            return None
        return "[IP]"

    if "::" in text or text.count(":") >= 7:
        text = _sub(_IPV6, text, keep6)
    return _sub(_IPV4, text, keep4) if text.count(".") >= 3 else text


class Budget:
    """How many phone windows may still go through the full matcher.

    The matcher costs about half a millisecond per region and window; hostile input (a
    64 KiB record of digits) must not hold the stream processor or a worker for seconds. Past the
    budget, a run of digits long enough to be a phone number is redacted unverified as
    `[NUMBER]`: failing closed costs a clean number, never a leak.
    """

    def __init__(self, windows: int = PHONE_WINDOW_BUDGET) -> None:
        self.windows = windows

    def take(self) -> bool:
        self.windows -= 1
        return self.windows >= 0


def _phone_matches(text: str, lo: int, hi: int) -> Iterator[tuple[int, int]]:
    """Phone numbers the metadata calls valid in text[lo:hi] (one character of context kept)."""
    lo, hi = max(0, lo - 1), min(len(text), hi + 1)
    window = text[lo:hi]
    for region in PHONE_REGIONS:
        for match in phonenumbers.PhoneNumberMatcher(
            window, region, leniency=phonenumbers.Leniency.VALID, max_tries=MAX_TRIES
        ):
            raw, start = match.raw_string, lo + match.start
            for opening, closing in ("()", "[]"):  # "(+44 20 ...)", "[+44 20 ...]": the bracket is the text's
                if raw.count(opening) > raw.count(closing):
                    raw, start = raw.lstrip(opening), start + len(raw) - len(raw.lstrip(opening))
            if _DATE.fullmatch(raw) or _ISBN_LABEL.search(text[max(0, start - 12) : start]):
                continue
            groups = re.findall(r"\d+", raw)
            international = raw.startswith(("+", "00"))
            if not international and sum(1 for g in groups if len(g) == 1) > 1:
                continue  # "1 2 3 4 5 6 7 8 9 10" is counting, not dialling
            yield start, lo + match.end


def _phone_spans(text: str, budget: Budget) -> Iterator[tuple[int, int, str]]:
    """(start, end, placeholder) for every phone number, looking only at runs of digits."""
    for run in _PHONE_RUN.finditer(text):
        if sum(c.isdigit() for c in run.group(0)) < MIN_PHONE_DIGITS:
            continue
        lo, hi = run.start(), run.end()
        for w in range(lo, max(lo + 1, hi - PHONE_WINDOW // 2), PHONE_WINDOW // 2):
            w_hi = min(hi, w + PHONE_WINDOW)
            if budget.take():
                yield from ((a, b, "[PHONE]") for a, b in _phone_matches(text, w, w_hi))
            elif sum(c.isdigit() for c in text[w:w_hi]) >= MIN_PHONE_DIGITS:
                yield w, w_hi, "[NUMBER]"


def _phone(text: str, budget: Budget) -> str:
    """Replace phone numbers; overlapping finds (several regions, windows) are merged."""
    merged: list[list] = []
    for start, end, label in sorted(_phone_spans(text, budget)):
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
            merged[-1][2] = "[NUMBER]" if "[NUMBER]" in (label, merged[-1][2]) else label
        else:
            merged.append([start, end, label])
    out, pos = [], 0
    for start, end, label in merged:
        out.append(text[pos:start] + label)
        pos = end
    return "".join(out) + text[pos:]


DETECTORS: tuple[Callable[[str], str], ...] = (_email, _iban, _card, _ssn, _ip)


def scrub(text: str, budget: Budget | None = None) -> str:
    """`text` with every piece of personal data replaced by its typed placeholder."""
    if not any(c.isdigit() or c == "@" for c in text) and not _SPELLED_AT.search(text):
        return text  # nothing any detector could match: the common case, kept cheap
    for detect in DETECTORS:
        text = detect(text)
    return _phone(text, budget or Budget())


def scrub_feedback(feedback: Feedback) -> Feedback:
    """The feedback with its free text (comment, correction) scrubbed; ids and scores kept."""
    budget = Budget()  # one budget for the whole record bounds its cost
    updates: dict[str, object] = {}
    if feedback.comment is not None:
        updates["comment"] = scrub(feedback.comment, budget)
    if feedback.correction is not None:
        updates["correction"] = [scrub(item, budget) for item in feedback.correction]
    return feedback.model_copy(update=updates) if updates else feedback
