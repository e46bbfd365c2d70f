"""What the experiments read besides answers: the stream processor's /metrics (controller
arms, router loads), the compacted workers.status topic (partitions and reasoner caches
per worker) and the `batches` topic (batches and questions per partition)."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer

from runtime.tail import caught_up, open_tail, tail
from schemas.settings import Settings
from schemas.topics import BATCHES, WORKERS_STATUS, topic_name


async def stream_metrics(port: int) -> dict | None:
    """The stream processor's counters, or None when it does not answer."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http,
            http.get(f"http://127.0.0.1:{port}/metrics") as response,
        ):
            return await response.json()
    except (TimeoutError, aiohttp.ClientError, ValueError):
        return None


async def sample_metrics(port: int, every_s: float, into: list[tuple[float, dict]]) -> None:
    """Until cancelled: append (wall time, /metrics) every `every_s` seconds."""
    while True:
        found = await stream_metrics(port)
        if found is not None:
            into.append((time.time(), found))
        await asyncio.sleep(every_s)


async def worker_statuses(settings: Settings) -> dict[str, dict]:
    """The latest workers.status record per worker node, as raw JSON (fields the schema
    gains later, e.g. `caches`, show as soon as a worker sends them)."""
    latest: dict[str, dict] = {}
    status = topic_name(settings, WORKERS_STATUS)
    async with tail(settings, status, "earliest", "autoglm-bench-status", isolation_level="read_uncommitted") as c:
        ends = await c.end_offsets(list(c.assignment()))
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and not await caught_up(c, ends):
            for rec in [r for recs in (await c.getmany(timeout_ms=300)).values() for r in recs]:
                try:
                    row = orjson.loads(rec.value)
                    latest[row["node_id"]] = row
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    continue
    return latest


def cache_hit_rates(before: dict[str, dict], after: dict[str, dict]) -> dict[str, dict] | None:
    """Hit rate per reasoner cache between two status readings, summed over workers;
    None when no worker publishes `caches` (the reasoner or worker cannot say)."""
    totals: dict[str, list[int]] = {}
    for node, row in after.items():
        for name, stats in (row.get("caches") or {}).items():
            old = ((before.get(node) or {}).get("caches") or {}).get(name) or {"hits": 0, "misses": 0}
            hits, misses = stats["hits"] - old["hits"], stats["misses"] - old["misses"]
            if hits < 0 or misses < 0:  # the worker restarted in between: its counters began again
                hits, misses = stats["hits"], stats["misses"]
            total = totals.setdefault(name, [0, 0, 0])
            total[0] += hits
            total[1] += misses
            total[2] += stats.get("size", 0)
    if not totals:
        return None
    return {
        name: {"hits": h, "misses": m, "hit_rate": round(h / (h + m), 3) if h + m else None, "size": size}
        for name, (h, m, size) in totals.items()
    }


class BatchCounter:
    """Counts batches and questions per `batches` partition from the moment it starts."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.batches: dict[int, int] = {}
        self.questions: dict[int, int] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        consumer, parts = await open_tail(
            self.settings, topic_name(self.settings, BATCHES), "latest", "autoglm-bench-batches"
        )
        for tp in parts:
            self.batches[tp.partition] = self.questions[tp.partition] = 0
        self._consumer = consumer
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            for tp, records in (await self._consumer.getmany(timeout_ms=200)).items():
                for rec in records:
                    self.batches[tp.partition] += 1
                    try:
                        self.questions[tp.partition] += len(orjson.loads(rec.value)["questions"])
                    except (orjson.JSONDecodeError, KeyError, TypeError):
                        pass

    def take(self) -> dict:
        """Counts per partition (keys are strings, as in JSON) since the last take (or start), and reset."""
        out = {
            "batches": {str(p): n for p, n in self.batches.items()},
            "questions": {str(p): n for p, n in self.questions.items()},
        }
        self.batches = dict.fromkeys(self.batches, 0)
        self.questions = dict.fromkeys(self.questions, 0)
        return out

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()
