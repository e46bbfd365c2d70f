"""Turns a reasoner's output into `Answer` messages with the latency breakdown."""

from __future__ import annotations

import time
from collections.abc import Sequence

from reasoning.reasoner import Reasoned
from schemas.answer import Answer, AnswerItem, Latency, ModelInfo
from schemas.batch import Batch


def now_ms() -> int:
    return int(time.time() * 1000)


def _clip(score: float) -> float:
    return min(1.0, max(0.0, float(score)))


def build_answers(
    batch: Batch, results: Sequence[Reasoned], model: ModelInfo, started_ms: int, finished_ms: int
) -> list[Answer]:
    """One Answer per question of `batch`, in order."""
    answers = []
    for item, result in zip(batch.questions, results, strict=True):
        q = item.question
        latency = Latency(
            ingest_ms=float(max(0, item.ingested_ts - q.ts)),
            batch_wait_ms=float(max(0, batch.created_ts - item.ingested_ts)),
            queue_ms=float(max(0, started_ms - batch.created_ts)),
            inference_ms=float(finished_ms - started_ms),
            total_ms=float(max(0, finished_ms - q.ts)),
        )
        answers.append(
            Answer(
                question_id=q.question_id,
                service=q.service,
                user_id=q.user_id,
                text=q.text,
                status=result.status,
                answers=[AnswerItem(entity=e, score=_clip(s)) for e, s in result.answers],
                paths=[list(p) for p in result.paths],
                topic_entity=result.topic_entity,
                sentence=result.sentence,
                confidence=_clip(result.confidence),
                reason=result.reason,
                model=model,
                batch_id=batch.batch_id,
                question_ts=q.ts,
                answered_ts=finished_ms,
                latency=latency,
            )
        )
    return answers


def handed_over(answer: Answer, at_ms: int) -> Answer:
    """`answer` with its latency measured up to `at_ms`, when the worker hands it on (to the
    PostgreSQL claim, then to the producer): `delivery_ms` from the end of inference,
    `total_ms` from the question's `ts`, and never less than the sum of the stages (a
    client clock ahead of ours would otherwise shorten it)."""
    lat = answer.latency
    delivery_ms = float(max(0, at_ms - answer.answered_ts))
    stages = lat.ingest_ms + lat.batch_wait_ms + lat.queue_ms + lat.inference_ms + delivery_ms
    total_ms = max(float(at_ms - answer.question_ts), stages)
    latency = lat.model_copy(update={"delivery_ms": delivery_ms, "total_ms": total_ms})
    return answer.model_copy(update={"latency": latency})


def error_results(n: int, reason: str) -> list[Reasoned]:
    """What a batch gets when the reasoner itself failed: an explicit error, never silence."""
    return [Reasoned(status="error", reason=reason) for _ in range(n)]
