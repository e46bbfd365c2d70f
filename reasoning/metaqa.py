"""MetaQA files: where the packaged copy lives, how a QA line reads, and the `[entity]` marks.

MetaQA marks the topic entity with brackets (`what films did [Ginger Rogers] act in`).
Real users do not type brackets, so every reader here can also hand back the text with
the brackets removed ("raw text"), which is how the linker is measured.

Two variants of the questions are packaged, cut into the same train/val split: "vanilla"
(MetaQA's templates, `data/metaqa/`) and "ntm" (the same questions paraphrased by
translation to another language and back, `data/metaqa-ntm/`). The KB is the vanilla one.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

DATA_DIR = Path(__file__).resolve().parent / "data" / "metaqa"
KB_FILE = DATA_DIR / "kb.txt.gz"
HOPS: tuple[int, ...] = (1, 2, 3)
Split = Literal["train", "val"]
Variant = Literal["vanilla", "ntm"]
VARIANTS: tuple[Variant, ...] = ("vanilla", "ntm")
VARIANT_DIRS: dict[Variant, Path] = {"vanilla": DATA_DIR, "ntm": DATA_DIR.parent / "metaqa-ntm"}

_BRACKET = re.compile(r"\[([^\[\]]+)\]")


def qa_file(hop: int, split: Split, variant: Variant = "vanilla") -> Path:
    """The packaged QA file of one hop, split and variant (train is gzip-compressed, val is not)."""
    if hop not in HOPS:
        raise ValueError(f"MetaQA has 1-, 2- and 3-hop questions, not {hop}-hop")
    if split not in ("train", "val"):
        raise ValueError(f"MetaQA splits here are 'train' and 'val', not {split!r}")
    if variant not in VARIANT_DIRS:
        raise ValueError(f"MetaQA variants are {', '.join(VARIANTS)}, not {variant!r}")
    name = "qa_train.txt.gz" if split == "train" else "qa_val.txt"
    return VARIANT_DIRS[variant] / f"{hop}-hop" / name


def qa_files(split: Split, variant: Variant = "vanilla") -> list[Path]:
    """The QA files of every hop for one split and variant, 1-hop first."""
    return [qa_file(hop, split, variant) for hop in HOPS]


def open_text(path: Path) -> Iterator[str]:
    """Lines of a UTF-8 text file without their newline; `.gz` files are decompressed."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            line = line.rstrip("\n")
            if line:
                yield line


@dataclass(frozen=True)
class QAPair:
    """One MetaQA line: the question as written (with brackets) and its gold answers."""

    question: str
    answers: tuple[str, ...]

    @property
    def topic_entity(self) -> str | None:
        """The bracketed entity, the gold topic entity of the question."""
        span = bracket_span(self.question)
        return span[2] if span else None

    @property
    def raw_text(self) -> str:
        """The question as a user would type it: brackets removed."""
        return strip_brackets(self.question)


def read_qa(path: Path | str, limit: int | None = None) -> list[QAPair]:
    """Read a MetaQA QA file (`question<TAB>answer|answer...`, gzip or plain)."""
    pairs: list[QAPair] = []
    for number, line in enumerate(open_text(Path(path)), start=1):
        question, sep, answers = line.partition("\t")
        if not sep:
            raise ValueError(f"{path}:{number}: expected `question<TAB>answer|answer...`")
        # NTM lines may end with a space before the TAB: the question is its text, trimmed.
        question = question.strip()
        pairs.append(QAPair(question=question, answers=tuple(a for a in answers.split("|") if a)))
        if limit is not None and len(pairs) >= limit:
            break
    return pairs


def bracket_span(text: str) -> tuple[int, int, str] | None:
    """(start, end, entity) of the first `[entity]` in `text`, brackets included in the span."""
    match = _BRACKET.search(text)
    if match is None:
        return None
    return match.start(), match.end(), match.group(1).strip()


def strip_brackets(text: str) -> str:
    """Remove the `[` `]` marks and keep the entity text: raw-text mode."""
    return _BRACKET.sub(lambda m: m.group(1), text)


def mask_brackets(text: str, token: str = "NE") -> str:
    """Replace every `[entity]` with `token`: the question's template."""
    return _BRACKET.sub(token, text)
