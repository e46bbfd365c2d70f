"""`batches` topic (internal, key = cluster key): questions grouped per (service, user_id)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from schemas.base import Message, TimestampMs, WireUUID
from schemas.question import Question

Trigger = Literal["time", "count", "bytes", "flush"]


class ClusterKey(BaseModel):
    """Requests of one service and one user are answered together."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    service: str
    user_id: str

    def as_key(self) -> bytes:
        """Kafka key of the batch: keeps one cluster on one partition."""
        return f"{self.service}\x1f{self.user_id}".encode()


class Rejection(BaseModel):
    """Why the stream processor refused a question (safety rule, quota); the worker answers
    it with status `rejected` and this reason instead of reasoning over it."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    rule: str
    reason: str


class BatchedQuestion(BaseModel):
    """A question plus the time the stream processor accepted it (for the latency breakdown)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    question: Question
    ingested_ts: TimestampMs
    rejection: Rejection | None = None


class Batch(Message):
    """One emitted batch. `trigger` says which limit closed it (`flush` = shutdown drain)."""

    batch_id: WireUUID
    cluster_key: ClusterKey
    trigger: Trigger
    questions: list[BatchedQuestion]
    created_ts: TimestampMs
