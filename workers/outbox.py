"""Reasoned polls waiting for delivery; one delivery at a time takes all that wait.

Why: a delivery (database row claim, then one Kafka transaction per source partition) costs
several round trips whatever its size, and it used to run once per poll, so under load
polls queued behind it one by one. Here the delivery stage is a single task: each time it
is free it takes every poll reasoned meanwhile and delivers them together (answers in poll
order, each partition's highest next offset), so the number of transactions per second
falls as load rises instead of the queue growing. This is the same dynamic batching the
reasoner gets from polling several batches at once, applied to the I/O stage.

`put` blocks while `limit` polls wait (backpressure on the consumer loop); a delivery error
is raised to the next `put` or `drain`, since polls behind it can no longer be committed in
order: the worker restarts its clients and the batches are redelivered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Outbox(Generic[T]):
    """A bounded list of reasoned polls and the task that delivers them, all waiting at once."""

    def __init__(self, deliver: Callable[[list[T]], Awaitable[None]], limit: int) -> None:
        if limit < 1:
            raise ValueError("the outbox must hold at least one poll")
        self._deliver = deliver
        self._limit = limit
        self._waiting: list[T] = []
        self._undelivered = 0  # put and not yet delivered (waiting or in the running delivery)
        self._cond = asyncio.Condition()
        self._error: BaseException | None = None
        self._task = asyncio.create_task(self._run(), name="outbox-delivery")

    @property
    def undelivered(self) -> int:
        return self._undelivered

    async def put(self, item: T) -> None:
        """Queue a reasoned poll; waits while `limit` polls already wait."""
        async with self._cond:
            await self._cond.wait_for(lambda: len(self._waiting) < self._limit or self._error is not None)
            self.raise_if_failed()
            self._waiting.append(item)
            self._undelivered += 1
            self._cond.notify_all()

    async def drain(self) -> None:
        """Wait until everything put so far is delivered; raises the delivery error, if any."""
        async with self._cond:
            await self._cond.wait_for(lambda: self._undelivered == 0 or self._error is not None)
            self.raise_if_failed()

    async def close(self) -> None:
        """Stop the delivery task; what it had not delivered stays uncommitted (redelivered)."""
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def raise_if_failed(self) -> None:
        """Raise the delivery error, if any (the consumer loop checks between polls too, so a
        failure is acted on even when no new poll comes to `put`)."""
        if self._error is not None:
            raise self._error

    async def _run(self) -> None:
        try:
            while True:
                async with self._cond:
                    await self._cond.wait_for(lambda: bool(self._waiting))
                    taken, self._waiting = self._waiting, []
                    self._cond.notify_all()  # room for the consumer loop's next put
                await self._deliver(taken)
                async with self._cond:
                    self._undelivered -= len(taken)
                    self._cond.notify_all()
        except asyncio.CancelledError:
            self._error = self._error or RuntimeError("the delivery stage was stopped")
            raise
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer loop, which restarts
            self._error = exc
            async with self._cond:
                self._cond.notify_all()
