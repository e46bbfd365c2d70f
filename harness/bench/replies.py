"""Answers for the baselines, built exactly as the pipeline's worker builds them, so every
system sends the same message (and the same latency breakdown) back."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from reasoning.reasoner import Reasoned
from schemas.answer import Answer, ModelInfo
from schemas.batch import Batch, BatchedQuestion, ClusterKey
from schemas.question import Question
from workers.answers import build_answers


def replies(
    questions: Sequence[Question],
    consumed_ms: int,
    results: Sequence[Reasoned],
    model: ModelInfo,
    started_ms: int,
    finished_ms: int,
) -> list[Answer]:
    """One Answer per question; the questions count as one batch formed when they were consumed."""
    first = questions[0]
    batch = Batch(
        batch_id=uuid.uuid4(),
        cluster_key=ClusterKey(service=first.service, user_id=first.user_id),
        trigger="time",
        questions=[BatchedQuestion(question=q, ingested_ts=consumed_ms) for q in questions],
        created_ts=consumed_ms,
    )
    return build_answers(batch, results, model, started_ms, finished_ms)
