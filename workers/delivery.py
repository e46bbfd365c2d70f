"""Producing a poll's answers and committing its offsets, exactly once for read_committed readers.

With transactions (the default) each `batches` partition this worker owns has its own
transactional producer, `transactional_id = <group>-<batches topic>-<partition>`: Kafka's
exactly-once pattern from before KIP-447. Why per partition and not per worker: aiokafka
commits offsets in a transaction with the group id only (TxnOffsetCommit v0, no member
generation), so the broker cannot refuse a commit from a worker that lost a partition
without knowing it (a worker paused past its session timeout, a "zombie"). With one
transactional id per partition, the partition's next owner starts that id's producer,
which fences the zombie: its open transaction is aborted and its next commit fails with
ProducerFenced, so only the new owner's answers reach the topic.

A poll's answers are grouped by the partition their batch came from; each group and that
partition's next offset go in one transaction on that partition's producer; the groups of
one poll commit concurrently.

Back-to-back transactions on one producer: the broker answers a commit before it has
written the transaction's markers, and a next transaction that adds partitions before then
is refused with CONCURRENT_TRANSACTIONS, which aiokafka retries after 20 ms (100 ms when
the transaction already holds partitions). Measured here: a transaction right after a
commit took 27 ms, one started 1-4 ms later 5-6 ms. So a producer's next transaction
starts at least `transaction_gap_ms` after its last commit.

Without transactions (`AUTOGLM_WORKER_TRANSACTIONS=false`) one idempotent producer sends,
then the consumer commits: at-least-once on the topic (a crash between the two repeats).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError, ProducerFenced

from runtime.clock import now_ms
from runtime.kafka_config import producer_config
from schemas.answer import Answer
from schemas.settings import Settings
from schemas.topics import ANSWERS, BATCHES, topic_name
from workers.answers import handed_over

log = logging.getLogger(__name__)

Grouped = dict[TopicPartition, list[Answer]]


class Delivery:
    """Producers of one worker; `deliver` produces a poll's answers and commits its offsets."""

    def __init__(self, settings: Settings, client_id: str, consumer: AIOKafkaConsumer) -> None:
        self.settings = settings
        self.client_id = client_id
        self.consumer = consumer
        self.topic = topic_name(settings, ANSWERS)
        self.transactional = settings.worker_transactions
        self._plain: AIOKafkaProducer | None = None
        self._owned: dict[int, AIOKafkaProducer] = {}  # batches partition -> its transactional producer
        self._committed_at: dict[int, float] = {}  # batches partition -> monotonic time of its last commit
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        if not self.transactional:
            self._plain = AIOKafkaProducer(**producer_config(self.settings, self.client_id))
            await self._plain.start()

    async def keep_only(self, partitions: Sequence[int]) -> None:
        """After a rebalance: close the producers of partitions now owned by others, start
        those of newly assigned ones (starting one fences the partition's previous owner)."""
        kept = set(partitions)
        await self.release([p for p in list(self._owned) if p not in kept])
        if self.transactional:
            for p in partitions:
                await self._producer(p)

    async def release(self, partitions: Sequence[int]) -> None:
        """Close the producers of partitions handed to another worker."""
        async with self._lock:
            gone = [self._owned.pop(p) for p in partitions if p in self._owned]
            for p in partitions:
                self._committed_at.pop(p, None)
        await asyncio.gather(*(_close(p) for p in gone))

    async def close(self) -> None:
        await self.release(list(self._owned))
        if self._plain is not None:
            await self._plain.stop()

    async def deliver(self, grouped: Grouped, offsets: dict[TopicPartition, int]) -> int:
        """Produce each partition's answers with its offset; returns how many answers were committed."""
        if not self.transactional:
            assert self._plain is not None, "call start() first"
            answers = [a for group in grouped.values() for a in group]
            await _produce(self._plain, self.topic, answers)
            try:
                await self.consumer.commit(offsets)
            except CommitFailedError as exc:  # partition moved in a rebalance: its new owner redoes it
                log.warning("commit failed after rebalance, batches will be redelivered: %r", exc)
            return len(answers)
        done = await asyncio.gather(
            *(self._transaction(tp, grouped.get(tp, []), offset) for tp, offset in offsets.items())
        )
        return sum(done)

    async def _transaction(self, tp: TopicPartition, answers: list[Answer], offset: int) -> int:
        """One partition's answers and next offset, committed together or not at all.

        A failure (fenced by the partition's new owner, a commit refused in a rebalance,
        the broker gone) is raised, not swallowed: this consumer has already moved past
        the poll, so only a restart from the committed offsets (`workers.main` runs the
        worker again with new clients) can get the poll answered, by whoever owns it then."""
        producer = await self._producer(tp.partition)
        wait_s = self._committed_at.get(tp.partition, 0.0) + self.settings.transaction_gap_ms / 1000 - time.monotonic()
        if wait_s > 0:
            await asyncio.sleep(wait_s)  # let the broker finish the last transaction's markers
        try:
            async with producer.transaction():
                await _produce(producer, self.topic, answers)
                await producer.send_offsets_to_transaction({tp: offset}, self.settings.worker_group_id)
            self._committed_at[tp.partition] = time.monotonic()
        except KafkaError as exc:
            if isinstance(exc, ProducerFenced):
                log.warning("partition %d: fenced by its new owner; this worker's transaction is aborted", tp.partition)
            await self.release([tp.partition])  # a producer that failed mid-transaction is not reused
            raise
        return len(answers)

    async def _producer(self, partition: int) -> AIOKafkaProducer:
        async with self._lock:
            producer = self._owned.get(partition)
            if producer is None:
                config = producer_config(self.settings, f"{self.client_id}-p{partition}")
                config["transactional_id"] = (
                    f"{self.settings.worker_group_id}-{topic_name(self.settings, BATCHES)}-{partition}"
                )
                config["transaction_timeout_ms"] = self.settings.transaction_timeout_ms
                producer = AIOKafkaProducer(**config)
                await producer.start()  # init_transactions: aborts the previous owner's open transaction
                self._owned[partition] = producer
            return producer


async def _produce(producer: AIOKafkaProducer, topic: str, answers: list[Answer]) -> None:
    """Send all, then wait for every acknowledgement; the first failure is raised after all
    have settled (so no failed delivery is left unobserved). Each answer's latency is taken
    as it is handed to the producer (`Latency.total_ms`: what the stream controller sees)."""
    deliveries = [
        await producer.send(topic, handed_over(a, now_ms()).to_bytes(), key=a.user_id.encode()) for a in answers
    ]
    outcomes = await asyncio.gather(*deliveries, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


async def _close(producer: AIOKafkaProducer) -> None:
    try:
        await asyncio.wait_for(producer.stop(), 10.0)
    except Exception as exc:  # noqa: BLE001 - a fenced or disconnected producer may fail to close cleanly
        log.warning("closing a producer: %r", exc)
