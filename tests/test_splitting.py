"""Cost-aware splitting keeps every chunk under the budget and serves the oldest first."""

from __future__ import annotations

from workers.splitting import split_by_cost


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
