"""Decoding untrusted bytes into messages, with a precise reason when that fails.

Every failure raises `WireError` whose `error_class` is one of `schemas.dead_letter.ErrorClass`;
the stream processor turns it into a dead-letter record instead of crashing.
"""

from __future__ import annotations

import base64
import time
from typing import TypeVar

import orjson
from pydantic import ValidationError

from schemas.base import Message
from schemas.dead_letter import DeadLetter, ErrorClass, SourcePosition

M = TypeVar("M", bound=Message)


class WireError(ValueError):
    """A record that cannot be accepted; `error_class` is the machine-readable reason."""

    def __init__(self, error_class: ErrorClass, message: str) -> None:
        super().__init__(message)
        self.error_class: ErrorClass = error_class
        self.message = message


MAX_JSON_DEPTH = 64  # orjson writes at most ~254 levels, and a batch wraps each question deeper


def _too_deep(obj: object, limit: int) -> bool:
    """True when `obj` nests dicts/lists deeper than `limit` (iterative: no recursion)."""
    stack = [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return False


def _short(err: ValidationError) -> str:
    """A bounded, readable summary of a pydantic error (field path and message)."""
    parts = []
    for item in err.errors()[:5]:
        loc = ".".join(str(p) for p in item.get("loc", ())) or "<root>"
        parts.append(f"{loc}: {item.get('msg', 'invalid')}")
    more = err.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def decode(raw: bytes | None, model: type[M], max_bytes: int) -> M:
    """Validate `raw` as `model`, or raise WireError saying exactly what is wrong."""
    if raw is None:
        raise WireError("invalid_json", "record has no value (tombstone); send a JSON object")
    if len(raw) > max_bytes:
        raise WireError("payload_too_large", f"payload is {len(raw)} bytes; the limit is {max_bytes}")
    try:
        raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise WireError("invalid_utf8", f"payload is not valid UTF-8 at byte {exc.start}") from None
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise WireError("invalid_json", f"payload is not JSON: {exc}"[:500]) from None
    if b"\\u0000" in raw.replace(b"\\\\", b""):  # an escaped backslash followed by "u0000" is text, not NUL
        # PostgreSQL text and jsonb cannot hold NUL; refuse it here, not at the database.
        raise WireError("schema_validation", "strings must not contain NUL (\\u0000) characters")
    if not isinstance(obj, dict):
        raise WireError("not_an_object", f"payload is a JSON {type(obj).__name__}, expected an object")
    if _too_deep(obj, MAX_JSON_DEPTH):
        raise WireError("schema_validation", f"JSON is nested deeper than {MAX_JSON_DEPTH} levels")
    version = obj.get("schema_version", 1)
    if type(version) is not int or version not in model.SUPPORTED_VERSIONS:
        raise WireError(
            "unknown_schema_version",
            f"schema_version {version!r} is not supported; supported: {sorted(model.SUPPORTED_VERSIONS)}",
        )
    try:
        return model.from_obj(obj)
    except ValidationError as exc:
        if any(e.get("loc") == ("text",) and "empty" in str(e.get("msg")) for e in exc.errors()):
            raise WireError("empty_text", "text is empty: send the question in `text`") from None
        raise WireError("schema_validation", _short(exc)) from None


def dead_letter(
    raw: bytes | None, key: bytes | None, error: WireError, topic: str, partition: int, offset: int
) -> DeadLetter:
    """Build the dead-letter record that carries the original bytes and the reason."""
    return DeadLetter(
        original_b64=base64.b64encode(raw or b"").decode("ascii"),
        key_b64=base64.b64encode(key).decode("ascii") if key is not None else None,
        error_class=error.error_class,
        error_message=error.message[:4096],
        source=SourcePosition(topic=topic, partition=partition, offset=offset),
        ts=int(time.time() * 1000),
    )
