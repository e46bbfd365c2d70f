"""The hand-written paraphrase set (tests/data/paraphrases.txt) is what it claims to be.

300 questions, 100 per hop, in MetaQA format, written by hand (see tests/data/PARAPHRASES.md).
Line i of `paraphrases.paths.tsv` gives the hop and relation path of line i of the questions;
the gold answers are what that path reaches from the bracketed entity in the packaged KB,
with MetaQA's rule that a walk never comes back to its topic entity (`reasoning.paths`).
No phrasing may be a training line: entity-masked, lower-cased and without punctuation, no
question equals any line of any `reasoning/data/metaqa*/N-hop/qa_train.txt.gz`.

Nothing trains or selects on this file; it is only measured on.

The gold was generated, not typed: `uv run python tests/test_paraphrases.py --write-gold`
rewrites the answer column of paraphrases.txt from the KB (the questions are kept).
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from reasoning.kb import KnowledgeBase
from reasoning.metaqa import HOPS, VARIANTS, QAPair, mask_brackets, qa_file, read_qa
from reasoning.paths import follow_from

DATA = Path(__file__).resolve().parent / "data"
PARAPHRASES = DATA / "paraphrases.txt"
PATHS = DATA / "paraphrases.paths.tsv"
PER_HOP = 100

_PEOPLE = ("directed_by", "starred_actors", "written_by")
_ATTRIBUTES = ("has_genre", "in_language", "release_year")
# MetaQA's question types as relation paths: 13 one-hop, 21 two-hop, 15 three-hop.
TEMPLATE_PATHS: frozenset[tuple[str, ...]] = frozenset(
    [(r,) for r in (*_PEOPLE, *_ATTRIBUTES, "has_tags", "has_imdb_rating", "has_imdb_votes")]
    + [(f"{r}_inv",) for r in (*_PEOPLE, "has_tags")]
    + [(p, f"{p}_inv") for p in _PEOPLE]
    + [(f"{p}_inv", y) for p in _PEOPLE for y in (*_PEOPLE, *_ATTRIBUTES)]
    + [(p, f"{p}_inv", y) for p in _PEOPLE for y in (*_PEOPLE, *_ATTRIBUTES) if y != p]
)

_NOT_WORD = re.compile(r"[^\w\s]")
_SPACES = re.compile(r"\s+")


def masked(question: str) -> str:
    """The phrasing without its entity: `[entity]` masked, lower-cased, punctuation dropped."""
    text = _NOT_WORD.sub(" ", mask_brackets(question, "ENTITYMASK").lower())
    return _SPACES.sub(" ", text).strip()


def read_paths(path: Path = PATHS) -> list[tuple[int, tuple[str, ...]]]:
    """(hop, relation path) per paraphrase line; the file has a header `line hop path`."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines()[1:], start=1):
        index, hop, relations = line.split("\t")
        assert int(index) == number, f"{path}: row {number} is numbered {index}"
        rows.append((int(hop), tuple(relations.split(">"))))
    return rows


def gold_answers(kb: KnowledgeBase, entity: str, path: Sequence[str]) -> list[str]:
    """What `path` reaches from `entity` in the KB, topic excluded at every hop (sorted names)."""
    start = kb.entity_id(entity)
    if start is None:
        raise KeyError(f"topic entity {entity!r} is not in the KB")
    reached = follow_from(kb, np.array([start]), [kb.relation_id(r) for r in path])
    return sorted(kb.names[e] for e in reached[0].nonzero()[1])


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load()


@pytest.fixture(scope="module")
def pairs() -> list[QAPair]:
    return read_qa(PARAPHRASES)


@pytest.fixture(scope="module")
def paths() -> list[tuple[int, tuple[str, ...]]]:
    return read_paths()


def test_a_hundred_questions_per_hop_each_on_a_metaqa_path(
    pairs: list[QAPair], paths: list[tuple[int, tuple[str, ...]]]
) -> None:
    assert len(pairs) == len(paths) == PER_HOP * len(HOPS)
    assert Counter(hop for hop, _ in paths) == {hop: PER_HOP for hop in HOPS}
    for number, (hop, path) in enumerate(paths, start=1):
        assert len(path) == hop and path in TEMPLATE_PATHS, f"line {number}: {hop}-hop {path}"
    assert all(p.topic_entity and p.answers for p in pairs)
    assert len({p.question for p in pairs}) == len(pairs), "a question is written twice"


def test_every_gold_answer_set_is_the_kbs_answer_for_its_path(
    kb: KnowledgeBase, pairs: list[QAPair], paths: list[tuple[int, tuple[str, ...]]]
) -> None:
    wrong = [
        f"line {number}: {pair.question!r} {'>'.join(path)}"
        for number, (pair, (_, path)) in enumerate(zip(pairs, paths), start=1)
        if set(pair.answers) != set(gold_answers(kb, pair.topic_entity or "", path))
    ]
    assert not wrong, "gold differs from the KB: " + "; ".join(wrong[:5])


def test_no_phrasing_is_a_training_line(pairs: list[QAPair]) -> None:
    training = {masked(p.question) for v in VARIANTS for hop in HOPS for p in read_qa(qa_file(hop, "train", v))}
    assert len(training) > 1000  # the files were read
    seen = [f"{p.question!r} = {masked(p.question)!r}" for p in pairs if masked(p.question) in training]
    assert not seen, "phrasings found in qa_train: " + "; ".join(seen[:5])


def write_gold() -> None:
    """Rewrite the answer column of paraphrases.txt from the KB (questions and order kept)."""
    kb = KnowledgeBase.load()
    lines = []
    for pair, (_, path) in zip(read_qa(PARAPHRASES), read_paths(), strict=True):
        lines.append(f"{pair.question}\t{'|'.join(gold_answers(kb, pair.topic_entity or '', path))}\n")
    PARAPHRASES.write_text("".join(lines), encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write-gold"]:
        raise SystemExit("usage: python tests/test_paraphrases.py --write-gold")
    write_gold()
