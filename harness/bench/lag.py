"""Consumer lag: how far a consumer group's committed offsets trail the end of its topic."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from runtime.admin import partitions_of
from runtime.kafka_config import common_config
from schemas.settings import Settings

log = logging.getLogger(__name__)


class LagSampler:
    """Samples the lag of (group, topic) pairs; `samples[group]` collects one total per sample."""

    def __init__(self, settings: Settings, groups: list[tuple[str, str]]) -> None:
        self.settings = settings
        self.groups = groups
        self.samples: dict[str, list[int]] = {group: [] for group, _ in groups}
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._parts: dict[str, list[TopicPartition]] = {}

    async def start(self) -> None:
        self._admin = AIOKafkaAdminClient(**common_config(self.settings))
        await self._admin.start()
        self._consumer = AIOKafkaConsumer(**common_config(self.settings), isolation_level="read_committed")
        await self._consumer.start()
        for _, topic in self.groups:
            self._parts[topic] = await partitions_of(self._consumer, topic)

    async def stop(self) -> None:
        if self._admin is not None:
            await self._admin.close()
        if self._consumer is not None:
            await self._consumer.stop()

    async def lag(self, group: str, topic: str) -> int:
        """Records in `topic` not yet committed by `group` (committed offsets lag the
        processing by the group's commit interval)."""
        assert self._admin is not None and self._consumer is not None
        parts = self._parts[topic]
        committed = await self._admin.list_consumer_group_offsets(group, partitions=parts)
        ends = await self._consumer.end_offsets(parts)
        total = 0
        for tp in parts:
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else 0
            total += max(0, ends[tp] - done)
        return total

    async def sample_every(self, interval_s: float) -> None:
        """Sample until cancelled."""
        while True:
            for group, topic in self.groups:
                try:
                    self.samples[group].append(await self.lag(group, topic))
                except Exception as exc:  # noqa: BLE001 - a missed sample is not a failed run
                    log.debug("lag sample failed for %s: %r", group, exc)
            await asyncio.sleep(interval_s)

    def take(self) -> dict[str, dict[str, float]]:
        """Max and mean per group since the last take, then forget them."""
        out = {}
        for group, values in self.samples.items():
            if values:
                out[group] = {"max": max(values), "mean": round(sum(values) / len(values), 1)}
            self.samples[group] = []
        return out
