"""Base class for every message on the wire: strict, versioned, orjson-encoded."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Self
from uuid import UUID

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

SCHEMA_VERSION = 1

# UUIDs arrive as JSON strings; strict mode would refuse the str -> UUID step, so this
# one field type relaxes strictness locally while every other field stays strict.
WireUUID = Annotated[UUID, Field(strict=False)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=256)]
# Bounded by PostgreSQL's bigint, where every timestamp ends up.
TimestampMs = Annotated[int, Field(ge=0, le=2**63 - 1, description="UTC milliseconds since the epoch")]


class Message(BaseModel):
    """A versioned wire message. Unknown fields are errors, types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    SUPPORTED_VERSIONS: ClassVar[frozenset[int]] = frozenset({SCHEMA_VERSION})

    schema_version: int = SCHEMA_VERSION

    def to_bytes(self) -> bytes:
        """JSON bytes for Kafka, encoded with orjson."""
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_obj(cls, obj: Any) -> Self:
        """Validate an already-parsed JSON object (raises pydantic.ValidationError)."""
        return cls.model_validate(obj)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Self:
        """Decode trusted bytes (our own topics). Untrusted input goes through schemas.wire."""
        return cls.model_validate(orjson.loads(raw))
