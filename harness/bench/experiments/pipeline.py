"""One isolated copy of (c) for one experiment: its own topics, group ids, log folder,
worker call logs and (when asked) a health port for the stream processor, started,
probed until it answers, and always stopped, whatever the experiment does."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.bench.attach import driver_for
from harness.bench.calls import read_calls
from harness.bench.cpu import wait_quiet
from harness.bench.driver import Driver, StepPlan
from harness.bench.experiments.probes import cache_hit_rates, worker_statuses
from harness.bench.progress import say
from harness.bench.systems import System, isolate
from harness.bench.workload import Workload
from runtime.services.kafka import ensure_topics_async
from schemas.settings import Settings


@dataclass(frozen=True)
class Context:
    """What every experiment gets from the run: presets, base settings, where to write,
    and the rate that stands for (c)'s maximum sustainable throughput."""

    mode: str
    step_s: float
    slo_ms: float
    echo: bool
    base: Settings
    run_id: str
    out_dir: Path
    users: int
    services: int
    raw_text: bool
    workload_questions: str | None  # harness.bench.workload.WORKLOADS; None: the default
    ready_timeout_s: float
    reference_qps: float | None  # None: measure it (a burst) in the experiment's own pipeline
    reference_source: str

    @property
    def quick(self) -> bool:
        return self.mode == "quick"

    def workload(self, **kw: object) -> Workload:
        kw.setdefault("questions", self.workload_questions)
        return Workload(self.users, self.services, self.raw_text, 23, **kw)  # type: ignore[arg-type]


def free_port() -> int:
    """A port nothing listens on now (the stream processor binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Measured:
    """What `Running.measure` saw: the driver's step summary, the call logs' reading
    (harness.bench.calls.read_calls) and the cache hit rates over the step."""

    step: dict
    calls: dict
    cache_hit_rates: dict | None

    def latency(self) -> dict:
        s = self.step
        return {
            "p50_ms": s["p50_ms"],
            "p99_ms": s["p99_ms"],
            "throughput_qps": s["throughput_qps"],
            "ok": s["ok"],
            "aborted": s["aborted"],
        }


@dataclass
class Running:
    system: System
    driver: Driver
    health_port: int
    startup_s: float

    def call_logs(self) -> list[Path]:
        assert self.system.call_log_dir is not None
        return sorted(self.system.call_log_dir.glob("*.jsonl"))

    async def warm_up(self, rate: float, seconds: float = 3.0) -> None:
        """A short unmeasured load: first calls fill the reasoner's caches."""
        await self.driver.step(rate, StepPlan(duration_s=seconds, min_samples=0), "warmup")

    async def measure(self, rate: float, seconds: float, slo_ms: float, seed: int, label: str) -> Measured:
        """One fixed-rate step with seeded arrivals and questions (the same in every run of
        an experiment), the workers' reasoner calls in it and their cache hit rates."""
        self.driver.rng = random.Random(seed)
        self.driver.workload.rng = random.Random(seed)
        before = await worker_statuses(self.system.settings)
        since = time.time()
        step = await self.driver.step(rate, StepPlan(duration_s=seconds, slo_ms=slo_ms, min_samples=0), label)
        calls = read_calls(self.call_logs(), since, time.time())
        return Measured(step, calls, cache_hit_rates(before, await worker_statuses(self.system.settings)))

    async def restarted(self, timeout_s: float) -> float:
        """Wait until a restarted part answers again; returns seconds waited."""
        waited = await self.driver.wait_ready(timeout_s, self.system.exited)
        await wait_quiet({r: p for r, p in self.system.pids().items()}, timeout_s=60.0)
        return waited


@asynccontextmanager
async def isolated_pipeline(
    ctx: Context,
    name: str,
    update: dict,
    workload: Workload,
    workers: int = 1,
    health: bool = False,
) -> AsyncIterator[Running]:
    """(c) with `update` applied to its settings, ready to measure; stopped on exit."""
    settings = isolate(ctx.base, ctx.run_id, f"exp-{name}").model_copy(update=update)
    log_dir = ctx.out_dir / "logs" / f"exp-{name}"
    port = free_port() if health else 0
    system = System(
        "pipeline", settings, log_dir, ctx.echo, workers, streams_health_port=port, call_log_dir=log_dir / "calls"
    )
    for old in log_dir.glob("calls/*.jsonl"):
        old.unlink()  # an earlier run's calls must not count
    await ensure_topics_async(settings)
    driver = driver_for(system, [system], ctx.base, workload)
    await driver.start()
    try:
        system.start()
        say(f"experiment {name}: starting (c) with {update}, {workers} worker(s)")
        waited = await driver.wait_ready(ctx.ready_timeout_s, system.exited)
        await wait_quiet({r: p for r, p in system.pids().items()}, timeout_s=120.0)
        say(f"experiment {name}: ready after {waited:.0f}s")
        yield Running(system, driver, port, round(waited, 1))
    finally:
        system.stop()
        await driver.stop()
