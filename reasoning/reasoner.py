"""The one interface the worker calls: `answer_batch(questions) -> list[Reasoned]`.

A reasoner receives a whole Kafka batch and answers it in one batched call; the worker
never calls it per question. Implementations: `reasoning.baseline` (template + nearest
neighbour relation paths) and `reasoning.gnn.reasoner`; `reasoning.loading` picks one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from schemas.answer import Status
from schemas.question import Question


@dataclass(frozen=True)
class Reasoned:
    """What a reasoner says about one question; the worker turns it into an `Answer`."""

    status: Status
    answers: list[tuple[str, float]] = field(default_factory=list)  # best first, score in [0, 1]
    paths: list[list[str]] = field(default_factory=list)  # paths[i] explains answers[i]
    topic_entity: str | None = None
    confidence: float = 0.0
    sentence: str | None = None
    reason: str | None = None  # why status is not `ok`


class Reasoner(Protocol):
    """A batched question answerer."""

    name: str
    version: str

    def answer_batch(self, questions: Sequence[Question]) -> list[Reasoned]:
        """Answer every question of the batch, in order, in one call."""
        ...
