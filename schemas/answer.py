"""`answers` topic (key = user_id): the answer, its reasoning paths and where time went."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.base import Message, TimestampMs, WireUUID

Status = Literal["ok", "no_entity", "rejected", "error"]


class AnswerItem(BaseModel):
    """One answer entity with its score in [0, 1]; lists are ordered best first."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    entity: str
    score: Annotated[float, Field(ge=0.0, le=1.0)]


class ModelInfo(BaseModel):
    """Which reasoner produced the answer."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: str
    version: str


class Latency(BaseModel):
    """Where an answer's time went, in milliseconds, stage by stage:

    - `ingest_ms`: the question's `ts` -> the stream processor ingested it;
    - `batch_wait_ms`: ingested -> its batch was emitted;
    - `queue_ms`: batch emitted -> the worker's reasoner call started;
    - `inference_ms`: that reasoner call (shared by every question of the call);
    - `delivery_ms`: the call ended (`Answer.answered_ts`) -> the worker handed this answer
      to its producer, in the transaction that commits it (waiting for earlier polls'
      delivery, the PostgreSQL claim, the gap between transactions);
    - `total_ms`: the question's `ts` -> that hand-off to the producer, the latency the
      stream controller is rewarded with; never less than the sum of the stages above
      (equal to it while the asking client's clock agrees with ours).

    A worker claims the answer's PostgreSQL row before it produces the answer, so the row
    it writes has `delivery_ms` and `total_ms` up to the claim; the `answers` topic (and a
    row replayed from it) has them up to production. Answers produced before
    `delivery_ms` existed read it as 0.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    ingest_ms: float
    batch_wait_ms: float
    queue_ms: float
    inference_ms: float
    delivery_ms: float = 0.0
    total_ms: float


class Answer(Message):
    """The worker's reply. `paths[i]` explains `answers[i]` as [entity, relation, entity, ...]."""

    question_id: WireUUID
    service: str
    user_id: str
    text: str
    status: Status
    answers: list[AnswerItem] = Field(default_factory=list)
    paths: list[list[str]] = Field(default_factory=list)
    topic_entity: str | None = None
    sentence: str | None = None
    confidence: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    reason: str | None = None
    model: ModelInfo
    batch_id: WireUUID
    question_ts: TimestampMs
    answered_ts: TimestampMs
    latency: Latency
