"""Feeds the stream processor's control loops from the system's own topics.

* `answers` (from its end) -> the adaptive batching controller: every stream process sees
  every answer, so each controller learns from the whole system's latency per service;
* `workers.status` (compacted, from the beginning) -> the load-aware router.
"""

from __future__ import annotations

import logging
import time

import orjson
from aiokafka import AIOKafkaConsumer

from runtime.admin import partitions_of
from runtime.kafka_config import common_config
from schemas.settings import Settings
from schemas.topics import ANSWERS, WORKERS_STATUS, topic_name
from schemas.worker_status import WorkerStatus
from streams.controller import BatchController
from streams.routing import BoundedLoadRouter

log = logging.getLogger(__name__)


async def feed_latencies(settings: Settings, controller: BatchController) -> None:
    """Run until cancelled: observe each answer's total latency, tick the controller."""
    consumer = AIOKafkaConsumer(**common_config(settings), enable_auto_commit=False, isolation_level="read_committed")
    await consumer.start()
    try:
        parts = await partitions_of(consumer, topic_name(settings, ANSWERS))
        consumer.assign(parts)
        await consumer.seek_to_end(*parts)
        while True:
            polled = await consumer.getmany(timeout_ms=250)
            for records in polled.values():
                for rec in records:
                    seen = service_latency(rec.value)
                    if seen is not None:
                        controller.observe(*seen)
            controller.tick(time.monotonic())
    finally:
        await consumer.stop()


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
    consumer = AIOKafkaConsumer(**common_config(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        parts = await partitions_of(consumer, topic_name(settings, WORKERS_STATUS))
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        while True:
            polled = await consumer.getmany(timeout_ms=500)
            for records in polled.values():
                for rec in records:
                    try:
                        router.update(WorkerStatus.from_bytes(rec.value))
                    except ValueError:
                        log.warning("unreadable worker status skipped", extra={"offset": rec.offset})
    finally:
        await consumer.stop()
