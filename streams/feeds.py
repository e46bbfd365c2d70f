"""Feeds the adaptive batching controller with the latencies of answers as they appear.

A group-less consumer reads `answers` from its end: every stream process sees every
answer, so each controller learns from the whole system's latency per service.
"""

from __future__ import annotations

import logging
import time

from aiokafka import AIOKafkaConsumer

from autoglm.kafka_meta import partitions_of
from schemas.answer import Answer
from schemas.kafka_config import common_config
from schemas.settings import Settings
from schemas.topics import ANSWERS, topic_name
from streams.controller import BatchController

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
                    try:
                        answer = Answer.from_bytes(rec.value)
                    except ValueError:
                        continue
                    controller.observe(answer.service, answer.latency.total_ms)
            controller.tick(time.monotonic())
    finally:
        await consumer.stop()
