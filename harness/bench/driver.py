"""Drives one system under test through Kafka: offers load, collects answers, summarises steps.

A step offers Poisson load at one rate for a bounded time and reports latency (produce
time -> answer consumed), throughput, batch sizes, time per stage, consumer lag and CPU
per process. A step is *sustained* when p99 <= the SLO with unanswered questions counted
as infinitely late. A step stops early once the oldest unanswered question is older than
`abort_after_s`: the system is overloaded and more load only grows the backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from harness.bench.collect import Collector, Sent
from harness.bench.cpu import CpuMeter, loadavg
from harness.bench.lag import LagSampler
from harness.bench.load import SendStats, send_burst, send_poisson
from harness.bench.stats import (
    INF,
    batch_sizes,
    call_sizes,
    dominant_stage,
    latency_summary,
    size_summary,
    stage_summary,
)
from harness.bench.workload import Record, Workload
from runtime.heap import collector_off
from runtime.kafka_config import producer_config
from schemas.settings import Settings
from schemas.topics import ANSWERS, QUESTIONS, topic_name

log = logging.getLogger(__name__)

PROBE_STEP = -1


@dataclass(frozen=True)
class StepPlan:
    """Bounds of one step."""

    duration_s: float
    slo_ms: float = 200.0
    abort_after_s: float = 2.0  # oldest unanswered question older than this: overloaded
    grace_s: float = 3.0  # after sending, wait this long for the last answers
    drain_cap_s: float = 20.0  # after an overloaded step, wait at most this long for the backlog

    min_samples: int = 150  # a p99 over fewer questions is little more than the maximum

    def seconds_at(self, rate: float) -> float:
        """Long enough for `min_samples` measured questions at `rate`, within 3x the step
        (at least 20 s): low rates get longer steps, every step stays bounded."""
        wanted = self.min_samples / max(rate, 1e-3) / 0.8
        return min(max(self.duration_s, wanted), max(3 * self.duration_s, 20.0))

    def warmup_s(self, seconds: float) -> float:
        """The first part of a step is not measured: the system adapts to the new rate."""
        return min(2.0, 0.2 * seconds)


class Driver:
    """Producer, answer collector and lag sampler for one system under test."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        workload: Workload,
        lag_groups: list[tuple[str, str]],
        pids: Callable[[], dict[str, int]],
        batch_max_size: int | None,
        seed: int = 5,
        services: Callable[[], object] = tuple,
    ) -> None:
        self.name = name
        self.settings = settings
        self.workload = workload
        self.pids = pids
        self.services = services  # a step during which this changes is flagged
        self._services_seen: object = None
        self.batch_max_size = batch_max_size
        self.topic = topic_name(settings, QUESTIONS)
        self.collector = Collector(settings, topic_name(settings, ANSWERS))
        self.lag = LagSampler(settings, lag_groups)
        self.rng = random.Random(seed)
        self._producer: AIOKafkaProducer | None = None
        self._step = 0

    async def start(self) -> None:
        config = {**producer_config(self.settings, f"bench-load-{self.name}"), "linger_ms": 1}
        self._producer = AIOKafkaProducer(**config)
        await self._producer.start()
        await self.collector.start()
        await self.lag.start()

    async def stop(self) -> None:
        """Close every client; a client that fails to close (broker gone) does not stop the rest."""
        closers = [self.collector.stop, self.lag.stop] + ([self._producer.stop] if self._producer else [])
        for close in closers:
            try:
                await asyncio.wait_for(close(), timeout=15)
            except BaseException as exc:  # noqa: BLE001 - aiokafka may raise CancelledError on close
                if isinstance(exc, KeyboardInterrupt):
                    raise
                log.warning("%s: closing a client failed: %r", self.name, exc)

    def _on_sent(self, step: int, ids: list[str]):  # noqa: ANN202
        def on_sent(record: Record, intended: float) -> None:
            self.collector.expect(record.question_id, Sent(step, intended, record.hops))
            ids.append(record.question_id)

        return on_sent

    async def wait_ready(self, timeout_s: float, exited: Callable[[], dict] = dict) -> float:
        """Send a probe question every few seconds until one is answered; returns seconds
        waited. Gives up at once when `exited()` names a process of the system that died."""
        assert self._producer is not None
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            if exited():
                raise RuntimeError(f"{self.name}: processes exited {exited()}; see their logs")
            ids: list[str] = []
            await send_burst(self._producer, self.topic, self.workload, 1, self._on_sent(PROBE_STEP, ids), SendStats())
            until = time.monotonic() + 3.0
            while time.monotonic() < until:
                if any(i in self.collector.got for i in ids):
                    waited = time.monotonic() - t0
                    await self.drain(5.0)  # earlier probes, answered late or never, must not
                    self.forget_outstanding()  # count against the first step
                    return waited
                await asyncio.sleep(0.1)
        raise TimeoutError(f"{self.name} did not answer a probe within {timeout_s:.0f}s; see its log")

    async def drain(self, cap_s: float) -> bool:
        """Wait until every question sent so far is answered, at most `cap_s` seconds."""
        until = time.monotonic() + cap_s
        while self.collector.outstanding and time.monotonic() < until:
            await asyncio.sleep(0.1)
        return not self.collector.outstanding

    def forget_outstanding(self) -> int:
        """Stop waiting for what a drain could not finish (it stays counted as unanswered)."""
        n = len(self.collector.outstanding)
        self.collector.outstanding.clear()
        return n

    async def burst(self, n: int, timeout_s: float) -> dict:
        """Send `n` questions back to back; throughput from the first send to the last answer."""
        assert self._producer is not None
        ids: list[str] = []
        t0 = time.time()
        await send_burst(self._producer, self.topic, self.workload, n, self._on_sent(PROBE_STEP, ids), SendStats())
        await self.drain(timeout_s)
        got = [self.collector.got[i] for i in ids if i in self.collector.got]
        self.forget_outstanding()
        if not got:
            return {"sent": n, "answered": 0, "throughput_qps": 0.0, "elapsed_s": None}
        elapsed = max(1e-3, max(g.received for g in got) - t0)
        return {
            "sent": n,
            "answered": len(got),
            "throughput_qps": round(len(got) / elapsed, 1),
            "elapsed_s": round(elapsed, 2),
        }

    async def offer(self, phases: list[tuple[float, float]], drain_s: float = 0.0) -> list[str]:
        """Offer Poisson load through consecutive (rate, seconds) phases with no pause
        between them and no summary (experiments build their own timelines from
        `collector`), then wait up to `drain_s` for the last answers (with the harness's
        garbage collector still off: the last answers are measured too); returns the
        question ids sent, in order."""
        assert self._producer is not None
        self._step += 1
        ids: list[str] = []
        with quiet_heap():
            for rate, seconds in phases:
                await send_poisson(
                    self._producer,
                    self.topic,
                    self.workload,
                    rate,
                    seconds,
                    self._on_sent(self._step, ids),
                    self.rng,
                    SendStats(),
                )
            if drain_s > 0:
                await self.drain(drain_s)
        return ids

    async def step(self, rate: float, plan: StepPlan, label: str = "sweep") -> dict:
        """Offer `rate` questions/s for `plan.duration_s` (or until overloaded); summarise."""
        with quiet_heap():
            return await self._step_at(rate, plan, label)

    async def _step_at(self, rate: float, plan: StepPlan, label: str) -> dict:
        assert self._producer is not None
        self._step += 1
        step, ids, stats = self._step, [], SendStats()
        cpu = CpuMeter(self.pids())
        self.lag.take()
        services_before = self.services()
        restarted_before = self._services_seen is not None and services_before != self._services_seen
        sampler = asyncio.create_task(self.lag.sample_every(1.0))
        seconds = plan.seconds_at(rate)
        started = time.time()
        measure_from = started + plan.warmup_s(seconds)
        sender = asyncio.create_task(
            send_poisson(
                self._producer, self.topic, self.workload, rate, seconds, self._on_sent(step, ids), self.rng, stats
            )
        )
        aborted = await self._watch(sender, plan, measure_from, cpu)
        sent_until = time.time()
        cpu_use = cpu.stop()  # while under load only, not while waiting for the last answers
        if not aborted:
            await self._wait_step_answers(ids, plan.grace_s)
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
        result = self._summarise(ids, rate, plan, started, measure_from, sent_until, aborted, stats)
        self._services_seen = self.services()
        result.update(
            label=label,
            cpu_pct=cpu_use,
            lag=self.lag.take(),
            loadavg=loadavg(),
            services_restarted=restarted_before or self._services_seen != services_before,
        )
        drained = await self.drain(plan.drain_cap_s if aborted or not result["ok"] else plan.grace_s)
        if not drained:
            result["left_unanswered_after_drain"] = self.forget_outstanding()
        log.info("%s step %.0f q/s: %s", self.name, rate, result)
        return result

    async def _watch(self, sender: asyncio.Task, plan: StepPlan, measure_from: float, cpu: CpuMeter) -> bool:
        """Wait for the sender; cancel it when the system falls too far behind. Starts the
        CPU meter when measuring starts."""
        cpu_started = False
        while not sender.done():
            await asyncio.sleep(0.1)
            now = time.time()
            if not cpu_started and now >= measure_from:
                cpu.start()
                cpu_started = True
            oldest = self.collector.oldest_outstanding()
            if oldest is not None and now - oldest > plan.abort_after_s:
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)
                if not cpu_started:
                    cpu.start()
                return True
        await sender
        if not cpu_started:
            cpu.start()
        return False

    async def _wait_step_answers(self, ids: list[str], grace_s: float) -> None:
        until = time.monotonic() + grace_s
        while time.monotonic() < until and any(i in self.collector.outstanding for i in ids[-200:]):
            await asyncio.sleep(0.05)
        while time.monotonic() < until and any(i in self.collector.outstanding for i in ids):
            await asyncio.sleep(0.1)

    def _summarise(
        self,
        ids: list[str],
        rate: float,
        plan: StepPlan,
        started: float,
        measure_from: float,
        sent_until: float,
        aborted: bool,
        stats: SendStats,
    ) -> dict:
        sent, got = self.collector.sent, self.collector.got
        measured = [i for i in ids if sent[i].intended >= measure_from]
        pairs = [(sent[i], got[i]) for i in measured if i in got]
        latencies = [1000 * (g.received - s.intended) for s, g in pairs]
        latencies += [INF] * (len(measured) - len(pairs))
        window = max(1e-3, sent_until - measure_from)
        in_window = sum(1 for i in ids if i in got and measure_from <= got[i].received <= sent_until)
        lat = latency_summary(latencies)
        step_got = [got[i] for i in ids if i in got]
        statuses: dict[str, int] = {}
        for g in step_got:
            statuses[g.status or "relayed"] = statuses.get(g.status or "relayed", 0) + 1
        ok = not aborted and bool(measured) and lat["p99_ms"] is not None and lat["p99_ms"] <= plan.slo_ms
        stages = stage_summary(pairs)
        return {
            "offered_qps": round(rate, 1),
            "duration_s": round(sent_until - started, 2),
            "measured_s": round(window, 2),
            "sent": stats.sent,
            "send_failed": stats.failed,
            "measured": len(measured),
            "answered": len(pairs),
            "throughput_qps": round(in_window / window, 1),
            **lat,
            "ok": ok,
            "aborted": aborted,
            "generator_behind_p99_ms": round(stats.behind_p99_ms(), 1),
            "batch_size": size_summary(batch_sizes(step_got), self.batch_max_size),
            "call_size": size_summary(call_sizes(step_got), None),
            "stages": stages,
            "dominant_stage": dominant_stage(stages),
            "statuses": statuses,
            "duplicates_total": self.collector.duplicates,
        }


@contextlib.contextmanager
def quiet_heap() -> Iterator[None]:
    """Collect now, put every object alive out of the garbage collector's reach
    (`gc.freeze`), and keep the collector off until the step ends.

    Why: the harness's heap grows with every question it tracks, and a full collection
    of it paused the sender and the collector, which showed as the system's latency.
    Freezing before a step was not enough: within one 28-s controller step the
    harness's full collections grew from 12 to 344 ms (a gc callback, 02:29 UTC) and the
    step's rolling 2-s p99 jumped by 100-220 ms at each. Reference counting still frees
    what a step drops; cyclic garbage waits for the collection at the next step."""
    gc.collect()
    gc.freeze()
    with collector_off():
        yield
