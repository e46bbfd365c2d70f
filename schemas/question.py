"""`questions` topic (key = user_id): what a user asks."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator

from schemas.base import Message, Name, TimestampMs, WireUUID


class Question(Message):
    """A natural-language question. `question_id` is the idempotency key end to end."""

    question_id: WireUUID
    service: Name
    user_id: Name
    text: Annotated[str, StringConstraints(max_length=4096)]
    ts: TimestampMs
    topic_entity: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = None
    context: dict[str, Any] | None = Field(default=None)

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text is empty: send the question in `text`")
        return value
