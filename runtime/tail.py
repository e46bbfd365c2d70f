"""The one topic reader: a consumer with no group, assigned every partition of a topic and
positioned at its beginning or its end, reading committed records only by default.

Why one: the CLI's `consume`, the client's answer wait, the stream processor's feeds, replay
and the harnesses each built this by hand (about ten copies), and a copy that forgot to
resolve its lazy `seek_to_end` before producing missed the answers it waited for.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from runtime.admin import partitions_of
from runtime.kafka_config import consumer_config
from schemas.settings import Settings

Start = Literal["earliest", "latest"]


async def open_tail(
    settings: Settings, topic: str, start: Start = "latest", client_id: str = "autoglm-tail", **overrides: Any
) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
    """A started consumer assigned every partition of `topic`, positioned at `start`
    (resolved now, so nothing produced after this call is missed). The caller stops it.
    `overrides` change the consumer's configuration (e.g. `isolation_level`)."""
    consumer = AIOKafkaConsumer(**{**consumer_config(settings, None, client_id), **overrides})
    await consumer.start()
    try:
        parts = await partitions_of(consumer, topic)
        consumer.assign(parts)
        if start == "latest":
            await consumer.seek_to_end(*parts)
        else:
            await consumer.seek_to_beginning(*parts)
        for tp in parts:
            await consumer.position(tp)
    except BaseException:
        await consumer.stop()
        raise
    return consumer, parts


@asynccontextmanager
async def tail(
    settings: Settings, topic: str, start: Start = "latest", client_id: str = "autoglm-tail", **overrides: Any
) -> AsyncIterator[AIOKafkaConsumer]:
    """`open_tail` as a context: the consumer is stopped on exit."""
    consumer, _ = await open_tail(settings, topic, start, client_id, **overrides)
    try:
        yield consumer
    finally:
        await consumer.stop()


async def records(
    consumer: AIOKafkaConsumer, timeout_ms: int = 200, max_records: int | None = None
) -> AsyncIterator[list[ConsumerRecord]]:
    """Every poll's records (all partitions together, possibly none), forever: the caller
    decides when to stop (an idle time, a count, cancellation)."""
    while True:
        polled = await consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        yield [rec for recs in polled.values() for rec in recs]


async def caught_up(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    """Whether the consumer's position has reached `ends` (from `end_offsets`) everywhere."""
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True
