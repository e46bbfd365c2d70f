"""Cost-aware splitting keeps every chunk under the budget and serves the oldest first;
`answer_within_budget` (the worker's call) splits a batch over budget into one reasoner call
per chunk and returns every result in the batch's order. (On the real GNN reasoner:
tests/test_subgraph_cache.py.)"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from reasoning.reasoner import Reasoned
from schemas.question import Question
from workers.splitting import answer_within_budget, split_by_cost


class EchoReasoner:
    """Answers each question with its own text, costs as given, and records every call."""

    name, version = "echo", "1"

    def __init__(self, costs: dict[str, float] | None) -> None:
        self.costs = costs
        self.calls: list[list[str]] = []
        if costs is None:  # a reasoner that cannot estimate
            self.estimate_costs = None  # type: ignore[assignment]

    def estimate_costs(self, questions: Sequence[Question]) -> list[float]:
        assert self.costs is not None
        return [self.costs[q.text] for q in questions]

    def answer_batch(self, questions: Sequence[Question]) -> list[Reasoned]:
        self.calls.append([q.text for q in questions])
        return [Reasoned(status="ok", sentence=q.text) for q in questions]


def _batch(texts: list[str], ages: list[int]) -> list[Question]:
    return [Question(question_id=uuid.uuid4(), service="s", user_id="u", text=t, ts=a) for t, a in zip(texts, ages)]


def test_chunks_respect_budget_and_age_order() -> None:
    costs = [500, 100, 900, 50, 400, 3000]
    ages = [5, 1, 3, 2, 4, 0]
    chunks = split_by_cost(list("abcdef"), costs, ages, budget=1000)
    assert [i for chunk in chunks for i in chunk] == [5, 1, 3, 2, 4, 0]  # oldest first
    assert chunks[0] == [5]  # alone over budget
    assert all(sum(costs[i] for i in c) <= 1000 for c in chunks if len(c) > 1)


def test_no_budget_means_one_chunk() -> None:
    assert split_by_cost([1, 2, 3], [1, 1, 1], [0, 1, 2], budget=0) == [[0, 1, 2]]
    assert split_by_cost([], [], [], budget=10) == []


def test_within_budget_stays_one_chunk_in_batch_order() -> None:
    assert split_by_cost(["a", "b", "c"], [1, 2, 3], [9, 5, 1], budget=6) == [[0, 1, 2]]


def test_answer_within_budget_splits_into_calls_and_answers_in_batch_order() -> None:
    texts = list("abcdef")
    reasoner = EchoReasoner(dict(zip(texts, [500, 100, 900, 50, 400, 3000])))
    batch = _batch(texts, ages=[5, 1, 3, 2, 4, 0])
    results = answer_within_budget(reasoner, batch, budget=1000)
    assert reasoner.calls == [["f"], ["b", "d"], ["c"], ["e", "a"]]  # four calls, oldest first, each within budget
    assert [r.sentence for r in results] == texts  # every question answered, in the batch's order


def test_answer_within_budget_makes_one_call_when_it_need_not_split() -> None:
    texts = list("abc")
    for reasoner, budget in [
        (EchoReasoner(dict.fromkeys(texts, 10.0)), 100.0),  # within budget
        (EchoReasoner(dict.fromkeys(texts, 10.0)), 0.0),  # no budget
        (EchoReasoner(None), 1.0),  # no estimate
    ]:
        results = answer_within_budget(reasoner, _batch(texts, ages=[3, 2, 1]), budget)
        assert reasoner.calls == [texts] and [r.sentence for r in results] == texts
