"""The one interface the worker calls: `answer_batch(questions) -> list[Reasoned]`.

A reasoner receives a whole Kafka batch and answers it in one batched call; the worker
never calls it per question. Implementations: `workers.baseline` (template + nearest
neighbour relation paths) and the GNN reasoner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

from schemas.answer import Status
from schemas.question import Question
from schemas.settings import Settings


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


def load_reasoner(settings: Settings) -> Reasoner:
    """Build the reasoner named by `AUTOGLM_REASONER` (`baseline` or `gnn`)."""
    if settings.reasoner == "baseline":
        from workers.baseline import BaselineReasoner

        return BaselineReasoner.load(settings)
    if settings.reasoner == "gnn":
        from workers.gnn.reasoner import GnnReasoner

        return GnnReasoner.load(settings)
    raise ValueError(f"unknown reasoner {settings.reasoner!r}: set AUTOGLM_REASONER to 'baseline' or 'gnn'")


def load_for_serving(settings: Settings) -> Reasoner:
    """`load_reasoner`, then wait for any model it loads in the background (the question
    encoder). Why: `autoglm ask`/`eval` start at once and answer known templates from the
    cache meanwhile, but a worker that joined its group while importing transformers held
    the GIL for seconds mid-stream (seen in a profile under load as 27 % of the worker's
    time and multi-second latency spikes); a worker is ready when its models are.
    """
    reasoner = load_reasoner(settings)
    wait_loaded = getattr(reasoner, "wait_loaded", None)
    if wait_loaded is not None:
        wait_loaded()
    return reasoner
