"""Produces records and runs a callback only once Kafka has acknowledged them.

The stream processor must never acknowledge a source record before what it produced
from it is durable (acks=all). `send_then` enqueues a record without waiting and runs
`on_delivered` when the broker confirms; the number of records awaiting confirmation is
bounded, so a slow broker pauses ingestion instead of growing memory.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from schemas.kafka_config import producer_config
from schemas.settings import Settings

log = logging.getLogger(__name__)

OnDelivered = Callable[[], Awaitable[None]]


class DeliverySink:
    """An idempotent producer plus bounded tracking of unconfirmed sends."""

    def __init__(self, settings: Settings, client_id: str, max_in_flight: int = 256) -> None:
        self._config = producer_config(settings, client_id)
        self._producer: AIOKafkaProducer | None = None
        self._max_in_flight = max_in_flight
        self._slots: asyncio.Semaphore | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self.failed: BaseException | None = None
        self.retry_s = settings.produce_retry_s

    async def start(self) -> None:
        """Create and connect the producer (aiokafka needs the running loop)."""
        self._producer = AIOKafkaProducer(**self._config)
        self._slots = asyncio.Semaphore(self._max_in_flight)
        await self._producer.start()

    async def send_then(
        self, topic: str, value: bytes, key: bytes | None, on_delivered: OnDelivered, partition: int | None = None
    ) -> None:
        """Enqueue one record; `on_delivered` runs after the broker acknowledged it."""
        if self.failed is not None:
            raise RuntimeError("an earlier produce failed; restart the stream processor") from self.failed
        assert self._producer is not None and self._slots is not None, "call start() first"
        await self._slots.acquire()
        try:
            delivery = await self._producer.send(topic, value=value, key=key, partition=partition)
        except BaseException:
            self._slots.release()
            raise
        resend = lambda: self._producer.send(topic, value=value, key=key, partition=partition)  # noqa: E731
        task = asyncio.ensure_future(self._confirm(delivery, on_delivered, resend))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _confirm(
        self, delivery: "asyncio.Future[object]", on_delivered: OnDelivered, resend: Callable[[], Awaitable]
    ) -> None:
        """Await the broker's acknowledgement; while the broker is away (a restart, a leader
        election) re-send with backoff for up to `retry_s`, so a broker restart does not
        take the stream processor down. Only then give up: the source stays unacknowledged."""
        delay, waited = 0.2, 0.0
        try:
            while True:
                try:
                    await delivery
                    break
                except KafkaError as exc:
                    if waited >= self.retry_s:
                        raise
                    log.warning("produce failed, re-sending in %.1fs: %r", delay, exc)
                    await asyncio.sleep(delay)
                    waited += delay
                    delay = min(delay * 2, 5.0)
                    delivery = await resend()
            await on_delivered()
        except Exception as exc:  # the source stays unacknowledged and will be redelivered
            log.error("produce failed; source records stay unacknowledged: %r", exc)
            self.failed = exc
        finally:
            assert self._slots is not None
            self._slots.release()

    async def drain(self) -> None:
        """Wait until every enqueued record is confirmed (or failed)."""
        if self._producer is not None:
            await self._producer.flush()
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def stop(self) -> None:
        await self.drain()
        if self._producer is not None:
            await self._producer.stop()
