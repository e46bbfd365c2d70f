"""The one clock helper: wall time as UTC milliseconds, the unit of every timestamp on the
wire (`Question.ts`, `Answer.answered_ts`, latency fields)."""

from __future__ import annotations

import time


def now_ms() -> int:
    """Milliseconds since the Unix epoch (UTC)."""
    return time.time_ns() // 1_000_000
