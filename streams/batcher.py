"""Per-key dynamic batching: one buffer per cluster key, closed by time, count or bytes.

Why not Faust's `stream.take()`: it batches per agent (all keys mixed) and acknowledges
on its own. Here every cluster (service, user_id) has its own buffer; a buffer is emitted
when the first of these happens:

* its window has passed since its first request arrived   -> trigger "time"
* it holds its maximum number of requests                 -> trigger "count"
* its question payload reaches `max_bytes`                -> trigger "bytes"

Window and maximum size can differ per key (the adaptive controller tunes them per
service), so deadlines are kept in a heap: the timer sleeps until the earliest one.
A heap entry whose buffer has already closed (count/bytes) is skipped when popped.
A buffer waits its window only when company is likely: when the key's recent arrival
rate predicts fewer than `min_expected` more requests within the window
(`streams.arrivals`), the first request is emitted at once (trigger "time": its window is
zero). A key without history waits, as before.

Emission is handed to `emit`, which owns producing the batch and acknowledging the
source records only after the produce succeeded.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from schemas.batch import Trigger
from streams.arrivals import ArrivalGaps

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")

Limits = Callable[[K], tuple[float, int]]  # key -> (window_s, max_size)


@dataclass
class Buffer(Generic[T]):
    """Requests waiting in one cluster, with the limits in force when it opened."""

    deadline: float
    max_size: int
    items: list[T] = field(default_factory=list)
    nbytes: int = 0


Emit = Callable[[K, list[T], Trigger], Awaitable[None]]


class KeyedBatcher(Generic[K, T]):
    """Groups items by key and hands each closed group to `emit`."""

    def __init__(
        self,
        emit: Emit,
        window_s: float,
        max_size: int,
        max_bytes: int,
        limits: Limits | None = None,
        min_expected: float = 0.0,
        arrival_keys: int = 100_000,
    ) -> None:
        if max_size < 1 or max_bytes < 1 or window_s <= 0:
            raise ValueError("batch window, size and bytes limits must be positive")
        if min_expected < 0:
            raise ValueError("min_expected must be >= 0 (0: every buffer waits its window)")
        self.min_expected = min_expected
        self.arrivals: ArrivalGaps[K] = ArrivalGaps(arrival_keys)
        self.skipped_waits = 0  # buffers emitted at once: no company expected
        self._emit = emit
        self.window_s = window_s
        self.max_size = max_size
        self.max_bytes = max_bytes
        self._limits = limits
        self._buffers: dict[K, Buffer[T]] = {}
        self._deadlines: list[tuple[float, int, K, Buffer[T]]] = []
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()
        self._room = asyncio.Condition()
        self._draining = False
        self.buffered = 0

    def limits_for(self, key: K) -> tuple[float, int]:
        """(window_s, max_size) for `key`; never above the configured maximum size."""
        if self._draining:
            return 0.0, self.max_size
        if self._limits is None:
            return self.window_s, self.max_size
        window, size = self._limits(key)
        return window, max(1, min(size, self.max_size))

    async def wait_for_room(self, limit: int) -> None:
        """Block while `limit` items are buffered: the caller stops consuming instead of
        growing memory (backpressure), until the timer or a limit emits something."""
        if self.buffered < limit:
            return
        async with self._room:
            await self._room.wait_for(lambda: self.buffered < limit)

    async def add(self, key: K, item: T, nbytes: int) -> None:
        """Buffer one item; emits at once when a count or bytes limit is reached."""
        now = time.monotonic()
        self.arrivals.observe(key, now)
        buf = self._buffers.get(key)
        if buf is not None and buf.items and buf.nbytes + nbytes > self.max_bytes:
            await self._close(key, "bytes")  # adding would overflow: ship what is there
            buf = None
        alone = False
        if buf is None:
            window, size = self.limits_for(key)
            alone = window > 0 and self._no_company(key, window)
            buf = Buffer(deadline=now + window, max_size=size)
            self._buffers[key] = buf
            if not alone:
                heapq.heappush(self._deadlines, (buf.deadline, next(self._seq), key, buf))
                self._wakeup.set()
        buf.items.append(item)
        buf.nbytes += nbytes
        self.buffered += 1
        if alone:
            self.skipped_waits += 1
            await self._close(key, "time")  # its window is zero: waiting would only add latency
        elif len(buf.items) >= buf.max_size:
            await self._close(key, "count")
        elif buf.nbytes >= self.max_bytes:
            await self._close(key, "bytes")

    def _no_company(self, key: K, window_s: float) -> bool:
        """Whether the key's recent rate predicts fewer than `min_expected` more requests
        within the window (never without an estimate)."""
        if self.min_expected <= 0:
            return False
        expected = self.arrivals.expected_within(key, window_s)
        return expected is not None and expected < self.min_expected

    async def _close(self, key: K, trigger: Trigger) -> None:
        buf = self._buffers.pop(key)
        self.buffered -= len(buf.items)
        async with self._room:
            self._room.notify_all()
        await self._emit(key, buf.items, trigger)

    async def run_timer(self) -> None:
        """Close buffers whose window expired; runs until cancelled."""
        while True:
            while self._deadlines and self._buffers.get(self._deadlines[0][2]) is not self._deadlines[0][3]:
                heapq.heappop(self._deadlines)  # that buffer already closed on count/bytes
            if not self._deadlines:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            deadline, _, key, _ = self._deadlines[0]
            delay = deadline - time.monotonic()
            if delay > 0 and not self._draining:
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), timeout=delay)
                except TimeoutError:
                    pass
                continue
            heapq.heappop(self._deadlines)
            await self._close(key, "flush" if self._draining else "time")

    async def drain_mode(self) -> None:
        """From now on close every buffer at once: used while shutting down, so nothing
        waits out a long window before its records can be acknowledged."""
        self._draining = True
        self._wakeup.set()
        await self.flush_all()

    async def flush_all(self) -> None:
        """Emit every open buffer (shutdown, partition revocation)."""
        for key in list(self._buffers):
            if key in self._buffers:
                await self._close(key, "flush")
