"""The 1-hop ceiling argument (reasoning.merged_titles) holds on the packaged MetaQA data."""

from __future__ import annotations

import pytest

from reasoning.kb import KnowledgeBase
from reasoning.merged_titles import measure, reach
from reasoning.metaqa import QAPair, qa_file, read_qa


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load()


def test_the_same_question_has_one_films_answers_in_each_split(kb: KnowledgeBase) -> None:
    def king_kong_cast(split: str) -> set[str]:
        (pair,) = [
            p
            for p in read_qa(qa_file(1, split))
            if p.topic_entity == "King Kong" and ("acted" in p.question or "starred" in p.question)
        ]
        where = reach(kb, pair)
        assert where is not None and where.relation.startswith("starred_actors")
        assert set(pair.answers) < where.reachable  # one film's cast out of the merged title's
        return set(pair.answers)

    assert not king_kong_cast("train") & king_kong_cast("val")  # 2005's cast in one, 1933's in the other


def test_reach_takes_the_smallest_relation_holding_the_gold(kb: KnowledgeBase) -> None:
    where = reach(kb, QAPair("who directed [King Kong]", ("Peter Jackson",)))
    assert where is not None and where.relation.startswith("directed_by")
    assert "Peter Jackson" in where.reachable and len(where.reachable) >= 2
    assert reach(kb, QAPair("who directed [No Such Film 123]", ("x",))) is None


def test_val_ceiling_is_below_one_and_repeats_disagree(kb: KnowledgeBase) -> None:
    m = measure(kb, "val")
    assert m["n"] == 993 and 40 <= m["strict_subset"] <= 70
    assert m["repeated_with_different_gold"] >= 20
    assert 0.96 < m["ceiling"] < 0.98
