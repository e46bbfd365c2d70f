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
    """Milliseconds: producer ts -> ingest, ingest -> batch emitted, batch -> worker, model, total."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    ingest_ms: float
    batch_wait_ms: float
    queue_ms: float
    inference_ms: float
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
