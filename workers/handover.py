"""Clean hand-over of partitions in a rebalance: a worker finishes what it polled first.

Why: aiokafka's transactional offset commit carries only the group id, not the member's
generation (KIP-447 fencing is not available), so the broker cannot refuse a commit from a
worker that has just lost a partition. Without this listener, a worker that loses a
partition while a poll from it is still being answered would commit that poll's answers
*and* the partition's new owner would answer the same batches again from the old committed
offset: the same answer twice on `answers` (measured in the fault suite: 4 of 5,000 when a
worker was killed and the survivors rebalanced).

So when partitions are revoked, the worker stops fetching (pauses its partitions) and waits
until every poll it has taken is delivered and committed; only then does the rebalance go
on and the new owner start, from an offset that covers everything already answered. The
wait is bounded: past `timeout_s` the rebalance goes on, and per-partition transactional
producers (`workers.delivery`) fence what this worker still tries to commit.

Assignment closes the producers of partitions handed on and starts those of new ones
(fencing their previous owners); a partition kept across the rebalance keeps its producer.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from workers.delivery import Delivery

log = logging.getLogger(__name__)


class Handover(ConsumerRebalanceListener):
    """Counts polls in flight; on revocation, pauses fetching and waits for them."""

    def __init__(self, consumer: AIOKafkaConsumer, delivery: Delivery, timeout_s: float = 60.0) -> None:
        self.consumer = consumer
        self.delivery = delivery
        self.timeout_s = timeout_s
        self.in_flight = 0
        self._drained = asyncio.Event()
        self._drained.set()

    def taken(self) -> None:
        """A poll with records was taken: it is in flight until `delivered`."""
        self.in_flight += 1
        self._drained.clear()

    def delivered(self) -> None:
        """A poll's answers and offsets are committed (or given up on)."""
        self.in_flight -= 1
        if self.in_flight <= 0:
            self.in_flight = 0
            self._drained.set()

    def abandon(self) -> None:
        """The worker is stopping on an error: what is in flight will never be delivered by
        it, so a rebalance in progress must not wait for it."""
        self.in_flight = 0
        self._drained.set()

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        if not revoked:
            return
        self.consumer.pause(*revoked)  # nothing new is taken from partitions about to move
        try:
            await asyncio.wait_for(self._wait_drained(), self.timeout_s)
        except TimeoutError:
            log.warning(
                "rebalance went on with %d poll(s) still in flight; their partitions' next owners "
                "fence this worker's transactions",
                self.in_flight,
            )

    async def _wait_drained(self) -> None:
        while self.in_flight:
            await self._drained.wait()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        if assigned:
            self.consumer.resume(*assigned)
        await self.delivery.keep_only([tp.partition for tp in assigned])
