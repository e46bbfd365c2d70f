"""What a consumer sees: answers read with isolation_level=read_committed, and group lag.

`AnswerWatcher` tails the scenario's `answers` topic from the beginning, as any outside
consumer would, and remembers per question id how many answers it saw and when the first
arrived. `Lag` tells how many records a consumer group has not committed yet: batches in
flight for the workers, questions not yet batched for the stream processor.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from runtime.admin import partitions_of
from runtime.kafka_config import common_config
from schemas.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class AnswerWatcher:
    """Counts answers per question id on one topic (read_committed, from offset 0)."""

    settings: Settings
    topic: str
    seen: Counter[uuid.UUID] = field(default_factory=Counter)
    first_at: dict[uuid.UUID, float] = field(default_factory=dict)  # wall time of first arrival
    # where each answer sat: (partition, offset, batch_id, answered_ts, record timestamp)
    where: dict[uuid.UUID, list[tuple[int, int, str, int, int]]] = field(default_factory=dict)
    records: int = 0
    last_at: float = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            **common_config(self.settings),
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            client_id="autoglm-chaos-watch",
        )
        await consumer.start()
        try:
            parts = await partitions_of(consumer, self.topic)
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            while not stop.is_set():
                polled = await consumer.getmany(timeout_ms=200, max_records=5000)
                now = time.time()
                for recs in polled.values():
                    for rec in recs:
                        self._note(rec.partition, rec.offset, rec.timestamp, rec.value, now)
        finally:
            await consumer.stop()

    def _note(self, partition: int, offset: int, timestamp: int, value: bytes, now: float) -> None:
        try:
            answer = orjson.loads(value)
            qid = uuid.UUID(answer["question_id"])
            evidence = (partition, offset, str(answer.get("batch_id")), answer.get("answered_ts"), timestamp)
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable record on %s", self.topic)
            return
        self.records += 1
        self.last_at = now
        self.seen[qid] += 1
        self.first_at.setdefault(qid, now)
        self.where.setdefault(qid, []).append(evidence)

    def answered(self, ids: list[uuid.UUID]) -> int:
        return sum(1 for q in ids if q in self.first_at)

    def all_answered(self, ids: list[uuid.UUID]) -> bool:
        return all(q in self.first_at for q in ids)

    def first_answer_after(self, t: float, ids: list[uuid.UUID] | None = None) -> float | None:
        """Wall time of the earliest first arrival after `t` (among `ids` when given)."""
        pool = self.first_at.items() if ids is None else ((q, self.first_at[q]) for q in ids if q in self.first_at)
        later = [at for _, at in pool if at > t]
        return min(later) if later else None


class Lag:
    """Uncommitted records of a consumer group on a topic (end offsets minus committed)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        self._admin = AIOKafkaAdminClient(**common_config(self.settings), request_timeout_ms=5000)
        await self._admin.start()
        self._consumer = AIOKafkaConsumer(
            **common_config(self.settings),
            group_id=None,
            enable_auto_commit=False,
            client_id="autoglm-chaos-lag",
            request_timeout_ms=5000,
        )
        await self._consumer.start()

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._admin is not None:
            await self._admin.close()

    async def of(self, group: str, topic: str) -> int | None:
        """Records of `topic` not yet committed by `group`; None when Kafka does not answer."""
        assert self._admin is not None and self._consumer is not None, "call start() first"
        try:
            parts: list[TopicPartition] = await partitions_of(self._consumer, topic)
            ends = await asyncio.wait_for(self._consumer.end_offsets(parts), 5)
            committed = await asyncio.wait_for(self._admin.list_consumer_group_offsets(group, partitions=parts), 5)
        except Exception as exc:  # noqa: BLE001 - the broker may be down in that very scenario
            log.info("lag of %s unavailable: %r", group, exc)
            return None
        total = 0
        for tp in parts:
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else 0
            total += max(0, ends[tp] - done)
        return total
