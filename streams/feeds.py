"""Feeds the stream processor's control loops from the system's own topics.

* `answers` (from its end) -> the adaptive batching controller: every stream process sees
  every answer, so each controller learns from the whole system's latency per service;
* `workers.status` (compacted, from the beginning) -> the load-aware router.
"""

from __future__ import annotations

import logging
import time

import orjson

from runtime.tail import records, tail
from schemas.settings import Settings
from schemas.topics import ANSWERS, WORKERS_STATUS, topic_name
from schemas.worker_status import WorkerStatus
from streams.controller import BatchController
from streams.routing import BoundedLoadRouter

log = logging.getLogger(__name__)


async def feed_latencies(settings: Settings, controller: BatchController) -> None:
    """Run until cancelled: observe each answer's total latency, tick the controller."""
    async with tail(settings, topic_name(settings, ANSWERS), "latest", "autoglm-streams-latency") as consumer:
        async for polled in records(consumer, timeout_ms=250):
            for rec in polled:
                seen = service_latency(rec.value)
                if seen is not None:
                    controller.observe(*seen)
            controller.tick(time.monotonic())


def service_latency(value: bytes) -> tuple[str, float] | None:
    """(service, total latency in ms) of an answer record, or None when it has none.

    Reads only these two fields: validating the whole answer (`Answer.from_bytes`, its
    answers and paths) cost this process CPU per answer that its ingest needs."""
    try:
        obj = orjson.loads(value)
        service, total = obj["service"], obj["latency"]["total_ms"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    if not isinstance(service, str) or isinstance(total, bool) or not isinstance(total, (int, float)):
        return None
    return service, float(total)


async def feed_worker_status(settings: Settings, router: BoundedLoadRouter) -> None:
    """Run until cancelled: hand every worker status record to the router."""
    status = topic_name(settings, WORKERS_STATUS)  # not transactional: read uncommitted, as produced
    async with tail(settings, status, "earliest", "autoglm-streams-status", isolation_level="read_uncommitted") as c:
        async for polled in records(c, timeout_ms=500):
            for rec in polled:
                try:
                    router.update(WorkerStatus.from_bytes(rec.value))
                except ValueError:
                    log.warning("unreadable worker status skipped", extra={"offset": rec.offset})
