"""Topic metadata for group-less consumers (replay, tails), which aiokafka does not fetch
until a topic is subscribed."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, TopicPartition


async def partitions_of(consumer: AIOKafkaConsumer, topic: str, wait_s: float = 10.0) -> list[TopicPartition]:
    """Every partition of `topic`, or a clear error when the topic does not exist.

    A topic created a moment ago can be missing from metadata for a little while; it is
    asked for again for up to `wait_s` seconds before giving up."""
    deadline = time.monotonic() + wait_s
    while True:
        cluster = await consumer._client.fetch_all_metadata()  # noqa: SLF001 - public method of the client
        parts = cluster.partitions_for_topic(topic)
        if parts:
            return [TopicPartition(topic, p) for p in sorted(parts)]
        if time.monotonic() > deadline:
            raise RuntimeError(f"topic {topic!r} does not exist: run `autoglm up` first")
        await asyncio.sleep(0.25)
