"""Publishes this worker's load to `workers.status` every interval, for the router.

Load ratio is the share of wall time spent answering; queue length is the lag of the
worker's assigned `batches` partitions (high watermark minus position).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from runtime.kafka_config import producer_config
from schemas.settings import Settings
from schemas.topics import WORKERS_STATUS, topic_name
from schemas.worker_status import CacheStats, WorkerStatus

log = logging.getLogger(__name__)


class LoadMeter:
    """Busy time and service times since the last report."""

    def __init__(self) -> None:
        self.busy_s = 0.0
        self.services: list[float] = []
        self.since = time.monotonic()

    def record(self, seconds: float) -> None:
        self.busy_s += seconds
        self.services.append(seconds)

    def take(self) -> tuple[float, float]:
        """(load ratio, mean service ms) since the last call; resets the meter."""
        now = time.monotonic()
        ratio = self.busy_s / max(now - self.since, 1e-6)
        mean_ms = 1000 * sum(self.services) / len(self.services) if self.services else 0.0
        self.busy_s, self.services, self.since = 0.0, [], now
        return ratio, mean_ms


async def publish_status(
    settings: Settings,
    node_id: str,
    consumer: AIOKafkaConsumer,
    meter: LoadMeter,
    caches: Callable[[], dict[str, dict]] = dict,
) -> None:
    """Run until cancelled. `caches` gives the reasoner's cache counters (name -> hits,
    misses, size, capacity), published with the load so a dashboard or the benchmark can
    read hit rates without asking the worker."""
    producer = AIOKafkaProducer(**producer_config(settings, f"{node_id}-status"))
    await producer.start()
    topic = topic_name(settings, WORKERS_STATUS)
    try:
        while True:
            await asyncio.sleep(settings.status_interval_s)
            assigned = sorted(consumer.assignment(), key=lambda tp: tp.partition)
            queue = 0
            for tp in assigned:
                high = consumer.highwater(tp)
                if high is not None:
                    queue += max(0, high - await consumer.position(tp))
            ratio, mean_ms = meter.take()
            status = WorkerStatus(
                node_id=node_id,
                partitions=[tp.partition for tp in assigned],
                load_ratio=ratio,
                avg_service_ms=mean_ms,
                queue_len=queue,
                ts=int(time.time() * 1000),
                caches={name: CacheStats(**stats) for name, stats in caches().items()},
            )
            await producer.send(topic, status.to_bytes(), key=node_id.encode())
    except asyncio.CancelledError:
        raise
    except Exception:  # status is advisory: never let it take the worker down
        log.exception("status publishing stopped")
    finally:
        await producer.stop()
