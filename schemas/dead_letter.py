"""`questions.dlq` / `feedback.dlq`: a record we could not accept, kept with the reason."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

from schemas.base import Message, TimestampMs

ErrorClass = Literal[
    "payload_too_large",
    "invalid_utf8",
    "invalid_json",
    "not_an_object",
    "unknown_schema_version",
    "schema_validation",
    "empty_text",
    "duplicate_in_batch",
]


class SourcePosition(BaseModel):
    """Where the bad record came from, so it can be found and replayed."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    topic: str
    partition: int
    offset: int


class DeadLetter(Message):
    """The original bytes (base64), why they were refused, and where they came from."""

    original_b64: str
    key_b64: str | None = None
    error_class: ErrorClass
    error_message: Annotated[str, StringConstraints(max_length=4096)]
    source: SourcePosition
    ts: TimestampMs
