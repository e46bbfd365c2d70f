"""Topic metadata for group-less consumers (replay, tails), which aiokafka does not fetch
until a topic is subscribed."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition


async def partitions_of(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """Every partition of `topic`, or a clear error when the topic does not exist."""
    cluster = await consumer._client.fetch_all_metadata()  # noqa: SLF001 - public method of the client
    parts = cluster.partitions_for_topic(topic)
    if not parts:
        raise RuntimeError(f"topic {topic!r} does not exist: run `autoglm up` first")
    return [TopicPartition(topic, p) for p in sorted(parts)]
