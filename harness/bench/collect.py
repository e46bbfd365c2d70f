"""Reads the answers topic and matches each answer to the question the harness sent.

Only the question id is needed to match; the latency breakdown, batch id and
answered time are kept when the answer carries them (the ceiling's relayed records are
the questions themselves and carry none).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer

from runtime.tail import open_tail
from schemas.settings import Settings


@dataclass(frozen=True)
class Sent:
    step: int
    intended: float  # wall seconds: when the question was meant to be produced
    hops: int


@dataclass(frozen=True)
class Got:
    received: float  # wall seconds: when the harness consumed the answer
    latency: dict | None
    batch_id: str | None
    answered_ts: int | None
    status: str | None


class Collector:
    """Matches answers to sent questions; keeps the unanswered ones in send order."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.settings = settings
        self.topic = topic
        self.sent: dict[str, Sent] = {}
        self.got: dict[str, Got] = {}
        self.outstanding: dict[str, float] = {}  # insertion order = send order
        self.duplicates = 0
        self.unknown = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Position at the current end of the answers topic and start reading."""
        # our consumers' settings (read_committed, the configured fetch wait: the instrument
        # must not hold answers back), no group: it assigns itself every partition
        self._consumer, _ = await open_tail(
            self.settings, self.topic, "latest", "autoglm-bench-collector", max_partition_fetch_bytes=8 * 1024 * 1024
        )
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()

    def expect(self, question_id: str, sent: Sent) -> None:
        self.sent[question_id] = sent
        self.outstanding[question_id] = sent.intended

    def oldest_outstanding(self) -> float | None:
        """Intended send time of the oldest unanswered question, or None."""
        return next(iter(self.outstanding.values()), None)

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            polled = await self._consumer.getmany(timeout_ms=200)
            now = time.time()
            for records in polled.values():
                for rec in records:
                    self._match(rec.value, now)

    def _match(self, value: bytes, now: float) -> None:
        try:
            obj = orjson.loads(value)
            question_id = obj["question_id"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self.unknown += 1
            return
        if self.outstanding.pop(question_id, None) is None:
            if question_id in self.got:
                self.duplicates += 1
            else:
                self.unknown += 1
            return
        self.got[question_id] = Got(
            received=now,
            latency=obj.get("latency"),
            batch_id=obj.get("batch_id"),
            answered_ts=obj.get("answered_ts"),
            status=obj.get("status"),
        )
