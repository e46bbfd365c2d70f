"""Open-loop load: Poisson arrivals at a set rate, whatever the system under test does.

Arrival times are drawn up front (exponential gaps); a question is stamped with its
*intended* send time, and latency is measured from that time, so a generator that falls
behind cannot hide a slow system (no coordinated omission). How far the generator fell
behind is reported with every step.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer

from harness.bench.workload import Record, Workload

OnSent = Callable[[Record, float], None]  # (record, intended wall time in seconds)


@dataclass
class SendStats:
    """What the generator did in one step."""

    sent: int = 0
    failed: int = 0
    behind_s: list[float] = field(default_factory=list)  # actual minus intended send time

    def behind_p99_ms(self) -> float:
        if not self.behind_s:
            return 0.0
        ordered = sorted(self.behind_s)
        return 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


async def send_poisson(
    producer: AIOKafkaProducer,
    topic: str,
    workload: Workload,
    rate: float,
    duration_s: float,
    on_sent: OnSent,
    rng: random.Random,
    stats: SendStats,
) -> None:
    """Send questions with exponential gaps of mean 1/rate for `duration_s` seconds.

    `rate=inf` sends back to back (a burst). Deliveries are awaited at the end; a failed
    delivery is counted, not retried (the question then shows as unanswered)."""
    loop = asyncio.get_running_loop()
    t0, wall0 = loop.time(), time.time()
    offset = 0.0
    deliveries: list[asyncio.Future] = []
    while True:
        offset += rng.expovariate(rate) if rate != float("inf") else 0.0
        if offset >= duration_s:
            break
        delay = t0 + offset - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif stats.sent % 64 == 0:
            await asyncio.sleep(0)  # behind schedule: still let the collector run
        intended = wall0 + offset
        record = workload.record(ts_ms=int(intended * 1000))
        on_sent(record, intended)
        deliveries.append(await producer.send(topic, record.value, key=record.key))
        stats.sent += 1
        stats.behind_s.append(max(0.0, loop.time() - (t0 + offset)))
    results = await asyncio.gather(*deliveries, return_exceptions=True)
    stats.failed += sum(1 for r in results if isinstance(r, BaseException))


async def send_burst(
    producer: AIOKafkaProducer, topic: str, workload: Workload, n: int, on_sent: OnSent, stats: SendStats
) -> None:
    """Send `n` questions back to back (for estimating capacity)."""
    deliveries: list[asyncio.Future] = []
    for i in range(n):
        record = workload.record()
        on_sent(record, time.time())
        deliveries.append(await producer.send(topic, record.value, key=record.key))
        stats.sent += 1
        if i % 64 == 0:
            await asyncio.sleep(0)
    results = await asyncio.gather(*deliveries, return_exceptions=True)
    stats.failed += sum(1 for r in results if isinstance(r, BaseException))
