"""The stream controller's answer feed (streams.feeds) reads service and total latency only."""

from __future__ import annotations

import orjson

from streams.feeds import service_latency


def test_reads_service_and_total_latency() -> None:
    value = orjson.dumps({"service": "svc-1", "latency": {"total_ms": 42, "queue_ms": 3.0}, "answers": []})
    assert service_latency(value) == ("svc-1", 42.0)


def test_anything_else_is_skipped() -> None:
    for bad in (
        b"not json",
        b"[1]",
        orjson.dumps({"service": "s"}),
        orjson.dumps({"service": 7, "latency": {"total_ms": 1}}),
        orjson.dumps({"service": "s", "latency": {"total_ms": True}}),
        orjson.dumps({"service": "s", "latency": None}),
    ):
        assert service_latency(bad) is None, bad
