"""The one lag reader: how many records of a topic a consumer group has not committed yet
(end offsets minus committed offsets, summed over partitions)."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from runtime.admin import partitions_of
from runtime.kafka_config import common_config
from schemas.settings import Settings

log = logging.getLogger(__name__)


class LagReader:
    """Reads group lag; one admin client and one consumer, started once and reused."""

    def __init__(self, settings: Settings, timeout_s: float = 5.0) -> None:
        self.settings = settings
        self.timeout_s = timeout_s
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._parts: dict[str, list[TopicPartition]] = {}

    async def start(self) -> None:
        timeout_ms = int(self.timeout_s * 1000)
        self._admin = AIOKafkaAdminClient(**common_config(self.settings), request_timeout_ms=timeout_ms)
        await self._admin.start()
        self._consumer = AIOKafkaConsumer(
            **common_config(self.settings),
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            client_id="autoglm-lag",
            request_timeout_ms=timeout_ms,
        )
        await self._consumer.start()

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._admin is not None:
            await self._admin.close()

    async def lag(self, group: str, topic: str) -> int:
        """Records in `topic` not yet committed by `group` (committed offsets trail the
        processing by the group's commit interval). Raises when Kafka does not answer."""
        assert self._admin is not None and self._consumer is not None, "call start() first"
        if topic not in self._parts:
            self._parts[topic] = await partitions_of(self._consumer, topic)
        parts = self._parts[topic]
        ends = await asyncio.wait_for(self._consumer.end_offsets(parts), self.timeout_s)
        committed = await asyncio.wait_for(
            self._admin.list_consumer_group_offsets(group, partitions=parts), self.timeout_s
        )
        total = 0
        for tp in parts:
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else 0
            total += max(0, ends[tp] - done)
        return total

    async def of(self, group: str, topic: str) -> int | None:
        """`lag`, or None when Kafka does not answer (a broker outage is a scenario, not an error)."""
        try:
            return await self.lag(group, topic)
        except Exception as exc:  # noqa: BLE001 - the broker may be down in that very scenario
            log.info("lag of %s unavailable: %r", group, exc)
            return None
