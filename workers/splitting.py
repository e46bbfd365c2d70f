"""Cost-aware splitting: a batch too expensive for one reasoner call is answered in chunks.

A batch of large 3-hop questions can reach a subgraph far bigger than the memory and
latency budget of one forward pass. The worker asks the reasoner for a cost estimate per
question (subgraph nodes + edges it expects to touch) and cuts the work into chunks whose
total cost stays under `budget`, oldest requests first so that the questions that have
waited longest are answered first. A single question over the budget forms its own chunk.
A batch within budget stays one chunk in its own order, so the reasoner can reuse what it
prepared for the estimate as it is (no re-assembly of the subgraph union).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from reasoning.reasoner import Reasoned, Reasoner
    from schemas.question import Question

T = TypeVar("T")


def split_by_cost(items: Sequence[T], costs: Sequence[float], ages: Sequence[int], budget: float) -> list[list[int]]:
    """Index chunks of `items`: ordered oldest first (smallest `ages` value = earliest
    ingest time), each chunk's cost <= budget unless it holds one item."""
    if budget <= 0 or sum(costs) <= budget:  # nothing to split: one chunk, in the batch's own order
        return [list(range(len(items)))] if items else []
    order = sorted(range(len(items)), key=lambda i: ages[i])
    chunks: list[list[int]] = []
    current: list[int] = []
    total = 0.0
    for i in order:
        if current and total + costs[i] > budget:
            chunks.append(current)
            current, total = [], 0.0
        current.append(i)
        total += costs[i]
    if current:
        chunks.append(current)
    return chunks


def answer_within_budget(reasoner: Reasoner, questions: Sequence[Question], budget: float) -> list[Reasoned]:
    """The reasoner's results for `questions` in order, from one call, or from one call per
    chunk when the estimated cost exceeds `budget` (reasoners that cannot estimate, and a
    budget <= 0, are never split)."""
    estimate = getattr(reasoner, "estimate_costs", None)
    if estimate is None or budget <= 0:
        return reasoner.answer_batch(questions)
    chunks = split_by_cost(questions, estimate(questions), [q.ts for q in questions], budget)
    results: list[Reasoned | None] = [None] * len(questions)
    for chunk in chunks:
        for i, result in zip(chunk, reasoner.answer_batch([questions[i] for i in chunk]), strict=True):
            results[i] = result
    return [r for r in results if r is not None]
