"""Produces records and runs a callback only once Kafka has acknowledged them.

The stream processor must never acknowledge a source record before what it produced
from it is durable (acks=all). `send_then` enqueues a record without waiting and runs
`on_delivered` when the broker confirms; the number of records awaiting confirmation is
bounded, so a slow broker pauses ingestion instead of growing memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, OutOfOrderSequenceNumber

from runtime.kafka_config import producer_config
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
        self._generation = 0  # bumped each time the producer is replaced
        self._replacing = asyncio.Lock()

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
        resend = lambda: self._send(topic, value, key, partition)  # noqa: E731
        try:
            sent = await resend()
        except BaseException:
            self._slots.release()
            raise
        task = asyncio.ensure_future(self._confirm(sent, on_delivered, resend))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _send(
        self, topic: str, value: bytes, key: bytes | None, partition: int | None
    ) -> tuple[asyncio.Future[object], int]:
        """Enqueue on the current producer, retrying for up to `retry_s`; a producer that died
        refuses at once, so it is replaced before the next try. Returns the delivery and
        the generation of the producer that took it."""
        backoff = _Backoff(self.retry_s)
        while True:
            generation = self._generation
            try:
                return await self._producer.send(topic, value=value, key=key, partition=partition), generation
            except KafkaError as exc:
                await backoff.before_retry(
                    exc,
                    "send refused",
                    lambda failure, generation=generation: self._replace_if_dead(generation, failure),
                )

    async def _confirm(
        self,
        sent: tuple[asyncio.Future[object], int],
        on_delivered: OnDelivered,
        resend: Callable[[], Awaitable[tuple[asyncio.Future[object], int]]],
    ) -> None:
        """Await the broker's acknowledgement; while the broker is away (a restart, a leader
        election) re-send with backoff for up to `retry_s`, so a broker restart does not
        take the stream processor down. Only then give up: the source stays unacknowledged."""
        delivery, generation = sent
        backoff = _Backoff(self.retry_s)
        try:
            while True:
                try:
                    await delivery
                    break
                except KafkaError as exc:
                    # only a failure of the current producer may replace it (not a late one of its predecessor)
                    await backoff.before_retry(
                        exc,
                        "produce failed",
                        lambda failure, generation=generation: self._replace_if_dead(generation, failure),
                    )
                    delivery, generation = await resend()
            await on_delivered()
        except Exception as exc:  # the source stays unacknowledged and will be redelivered
            log.error("produce failed; source records stay unacknowledged: %r", exc)
            self.failed = exc
        finally:
            assert self._slots is not None
            self._slots.release()

    async def _replace_if_dead(self, generation: int, failure: KafkaError) -> None:
        """A new producer when the current one can no longer send.

        aiokafka's sender task ends for good on an unexpected error, and after a broker
        restart a partition can answer OutOfOrderSequenceNumber to every later batch of the
        same producer (its sequence state is gone): either way re-sending through
        that producer would only fail until `retry_s`. Many
        confirmations see the same failure at once; the first replaces the producer, the
        rest find the generation moved on. The new producer has a new producer id, so its
        sequence numbers start afresh; the batches re-sent through it may reach the topic a
        second time only if the dead producer had written them, and a batch's questions
        are deduplicated by the workers (the first batch to answer a question owns it)."""
        async with self._replacing:
            producer = self._producer
            broken = isinstance(failure, OutOfOrderSequenceNumber) or (producer is not None and _sender_dead(producer))
            if generation != self._generation or producer is None or not broken:
                return
            log.warning("the producer stopped sending (broker restart?); replacing it")
            fresh = AIOKafkaProducer(**self._config)
            try:
                await fresh.start()
            except KafkaError as exc:  # broker still away: the callers back off and ask again
                log.warning("new producer could not connect yet: %r", exc)
                await fresh.stop()
                return
            self._producer = fresh
            self._generation += 1
            try:
                await asyncio.wait_for(producer.stop(), 5.0)
            except (TimeoutError, KafkaError) as exc:
                log.warning("closing the old producer: %r", exc)

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


def _sender_dead(producer: AIOKafkaProducer) -> bool:
    """Whether aiokafka's background sender has ended (it never restarts by itself)."""
    task = getattr(getattr(producer, "_sender", None), "sender_task", None)
    return task is not None and task.done()


class _Backoff:
    """Exponential backoff (0.2 s doubling to 5 s) within a time budget, shared by the
    send and the confirm loops: past the budget the failure is raised."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self.delay = 0.2
        self.waited = 0.0

    async def before_retry(self, exc: KafkaError, what: str, repair: Callable[[KafkaError], Awaitable[None]]) -> None:
        """Raise `exc` when the budget is spent; else log, run `repair(exc)` and sleep."""
        if self.waited >= self.budget_s:
            raise exc
        log.warning("%s, retrying in %.1fs: %r", what, self.delay, exc)
        await repair(exc)
        await asyncio.sleep(self.delay)
        self.waited += self.delay
        self.delay = min(self.delay * 2, 5.0)
