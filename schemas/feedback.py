"""`feedback` topic (key = user_id): what a user thought of an answer."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field, StringConstraints

from schemas.base import Message, Name, TimestampMs, WireUUID

FEEDBACK_NAMESPACE = uuid.UUID("6f1d3c3e-5a0b-4d59-9a53-3f6b1c2f0a11")


class Feedback(Message):
    """A score in [0, 1], optionally the right answers and a comment.

    `feedback_id` is optional on the wire; when absent it is derived from
    (question_id, user_id, ts) so replays re-apply the same row instead of adding one.
    """

    feedback_id: WireUUID | None = None
    question_id: WireUUID
    user_id: Name
    score: Annotated[float, Field(ge=0.0, le=1.0)]
    correction: Annotated[list[Annotated[str, StringConstraints(max_length=512)]], Field(max_length=1000)] | None = None
    comment: Annotated[str, StringConstraints(max_length=4096)] | None = None
    ts: TimestampMs

    def effective_id(self) -> uuid.UUID:
        """The idempotency key of this feedback row."""
        if self.feedback_id is not None:
            return self.feedback_id
        return uuid.uuid5(FEEDBACK_NAMESPACE, f"{self.question_id}|{self.user_id}|{self.ts}")
