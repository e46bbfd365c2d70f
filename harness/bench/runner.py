"""One benchmark run: every system, same machine, same reasoner, one after another.

All systems start together (their models load in parallel, which saves minutes) and are
probed until each answers; then they are measured one at a time, and each is stopped
once measured, so no system is measured while another one is busy:

1. warm up at a low rate, estimate capacity with a burst, then warm up at 30 % of it for
   three steps (steady state, not a cold process, is measured);
2. search the maximum sustainable throughput at p99 <= SLO (`search.find_max`), then confirm
   it: a majority of `runs` steps at that rate must hold the SLO (`confirm.confirm_max`);
3. measure at the common loads (the maxima of the systems measured before), so every
   system has a p99 at the same offered load (median of `runs` steps);
4. pipeline only: 70 % of its maximum (median of `runs` steps), and the search again for a
   few batch windows.
Between phases the harness waits until the system is idle, so a failed step's backlog
does not count against the next one.

Then the selected experiments (harness.bench.experiments: adaptive batching, skew and
routing, cost-aware splitting), each on its own copy of (c), sized by (c)'s maximum.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.bench.attach import driver_for
from harness.bench.bound import reasoner_alone
from harness.bench.capacity import estimate_capacity
from harness.bench.confirm import confirm_max, median_step
from harness.bench.cpu import loadavg, wait_quiet
from harness.bench.driver import Driver, StepPlan
from harness.bench.progress import say
from harness.bench.search import SearchPlan, find_max
from harness.bench.systems import SYSTEMS, System, isolate
from harness.bench.workload import Workload
from runtime.services.kafka import delete_topics_async, ensure_topics_async
from schemas.settings import Settings

log = logging.getLogger(__name__)

# Later systems are also measured at these systems' maxima: p99 of everyone at one load.
COMMON_LOAD_SOURCES = ("per_message", "faust_take")


def uptime() -> str:
    """`uptime` as printed (machine load goes with every measurement)."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"load average: {loadavg()}"


@dataclass(frozen=True)
class BenchConfig:
    """Everything that shapes a run; `quick()` and `full()` are the two presets."""

    mode: str
    step_s: float
    search: SearchPlan
    windows: tuple[int, ...]  # batch windows (ms) for the pipeline's window sweep
    window_steps: int
    budget_s: float  # the whole run stops searching after this long
    runs: int = 3  # steps per confirmed maximum and per fixed-load figure (their median is reported)
    systems: tuple[str, ...] = SYSTEMS
    slo_ms: float = 200.0
    users: int = 100
    services: int = 4
    raw_text: bool = False
    workload: str | None = None  # harness.bench.workload.WORKLOADS; None: the default (NTM when present)
    workers: int = 1
    echo: bool = False
    ready_timeout_s: float = 600.0  # models load slowly on a busy machine
    out_dir: Path = Path("bench-results")
    experiments: tuple[str, ...] = ()  # harness.bench.experiments, after the systems
    experiment_rate: float | None = None  # sizes the experiments when (c) was not measured

    @classmethod
    def quick(cls, **kw: object) -> BenchConfig:
        # two bisections: with one, (c)'s maximum was only bracketed within 22 % (1,673 held, 2,049 failed)
        defaults = dict(
            mode="quick",
            step_s=4.0,
            search=SearchPlan(max_steps=6, refine=2),
            windows=(5, 50),
            window_steps=3,
            budget_s=600.0,
        )
        return cls(**{**defaults, **kw})  # type: ignore[arg-type]

    @classmethod
    def full(cls, **kw: object) -> BenchConfig:
        defaults = dict(
            mode="full",
            step_s=8.0,
            search=SearchPlan(max_steps=7, refine=2),
            windows=(5, 25, 50, 100),
            window_steps=3,
            budget_s=1800.0,
        )
        return cls(**{**defaults, **kw})  # type: ignore[arg-type]


@dataclass
class Clock:
    budget_s: float
    t0: float = field(default_factory=time.monotonic)

    def left(self) -> bool:
        return time.monotonic() - self.t0 < self.budget_s


async def run_bench(cfg: BenchConfig, base: Settings) -> dict:
    """Run every configured system and return the raw results (see report.summarise)."""
    clock = Clock(cfg.budget_s)
    run_id = f"bench{uuid.uuid4().hex[:6]}"
    log_dir = cfg.out_dir / "logs"
    workload_seed = 17
    systems = [
        System(name, isolate(base, run_id, name), log_dir, cfg.echo, cfg.workers)
        for name in SYSTEMS
        if name in cfg.systems
    ]
    out: dict = {
        "run_id": run_id,
        "uptime_before": uptime(),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "systems": {},
    }
    say(f"run {run_id}: {', '.join(s.name for s in systems)}; {out['uptime_before']}")
    for system in systems:
        await ensure_topics_async(system.settings)
    drivers: dict[str, Driver] = {}
    try:
        for system in systems:
            system.start()
        for system in systems:
            workload = Workload(cfg.users, cfg.services, cfg.raw_text, workload_seed, questions=cfg.workload)
            drivers[system.name] = driver_for(system, systems, base, workload)
            await drivers[system.name].start()
        startup = await _wait_all_ready(systems, drivers, cfg.ready_timeout_s)
        say("waiting until the systems are idle (models may still load in the background) ...")
        out["idle_cpu_pct"] = await wait_quiet({f"{s.name}:{r}": p for s in systems for r, p in s.pids().items()})
        common: dict[str, float] = {}  # system name -> its max, used as a common load by later systems
        for system in systems:
            result = {"label": system.label, **startup[system.name]}
            out["systems"][system.name] = result
            if "error" not in result:
                try:
                    result.update(await _measure(system, drivers[system.name], cfg, clock, common))
                except Exception as exc:  # noqa: BLE001 - one system's failure must not lose the others
                    log.exception("measuring %s failed", system.name)
                    result["error"] = f"measuring failed: {exc!r}"[:500]
                if result.get("at_max") and system.name in COMMON_LOAD_SOURCES:
                    common[system.name] = result["at_max"]["offered_qps"]
            system.stop()
            await drivers.pop(system.name).stop()
        if "ceiling" in out["systems"] and not cfg.echo:
            say("reasoner alone (no Kafka, no PostgreSQL): the bound on any serving of this model here ...")
            out["reasoner_alone"] = await reasoner_alone(isolate(base, run_id, "pipeline"))
        if cfg.experiments:
            out["experiments"] = await _experiments(cfg, base, run_id, out["systems"].get("pipeline"))
    finally:
        for system in systems:  # processes first: they must never outlive the run
            system.stop()
        for driver in drivers.values():
            await driver.stop()
        await _delete_topics(base, run_id)
    out["uptime_after"] = uptime()
    out["elapsed_s"] = round(time.monotonic() - clock.t0, 1)
    return out


async def _experiments(cfg: BenchConfig, base: Settings, run_id: str, pipeline: dict | None) -> dict:
    from harness.bench.experiments import run_experiments
    from harness.bench.experiments.pipeline import Context
    from harness.bench.experiments.reference import from_main_run

    rate, source = from_main_run(pipeline, cfg.experiment_rate)
    ctx = Context(
        mode=cfg.mode,
        step_s=cfg.step_s,
        slo_ms=cfg.slo_ms,
        echo=cfg.echo,
        base=base,
        run_id=run_id,
        out_dir=cfg.out_dir,
        users=cfg.users,
        services=cfg.services,
        raw_text=cfg.raw_text,
        workload_questions=cfg.workload,
        ready_timeout_s=cfg.ready_timeout_s,
        reference_qps=rate,
        reference_source=source,
    )
    return await run_experiments(ctx, cfg.experiments, pipeline or {})


async def _wait_all_ready(systems: list[System], drivers: dict[str, Driver], timeout_s: float) -> dict[str, dict]:
    say("waiting for every system to answer a probe (models load in parallel) ...")

    async def one(system: System) -> dict:
        try:
            waited = await drivers[system.name].wait_ready(timeout_s, system.exited)
            say(f"{system.name} ready after {waited:.0f}s")
            return {"startup_s": round(waited, 1)}
        except (TimeoutError, RuntimeError) as exc:
            say(f"{system.name}: {exc}; exited: {system.exited()}")
            return {"error": str(exc)}

    results = await asyncio.gather(*(one(s) for s in systems))
    return {s.name: r for s, r in zip(systems, results)}


async def _measure(system: System, driver: Driver, cfg: BenchConfig, clock: Clock, common: dict[str, float]) -> dict:
    plan = StepPlan(duration_s=cfg.step_s, slo_ms=cfg.slo_ms)
    say(f"{system.name}: warm-up and capacity estimate")
    warmup = StepPlan(duration_s=min(3.0, cfg.step_s), slo_ms=cfg.slo_ms, min_samples=0)
    await driver.step(10.0 if system.name != "ceiling" else 100.0, warmup, "warmup")
    estimate = await estimate_capacity(driver, 1000 if system.name == "ceiling" else 200)
    start = max(cfg.search.min_rate, 0.5 * (estimate["throughput_qps"] or 10.0))
    # Steady state before measuring: a process's first minute is slower (first touches of
    # the knowledge base's arrays, allocator and interpreter caches); measured here, the
    # pipeline's p99 at 150 q/s fell from ~210 to ~170 ms over its first 20 s of load.
    await _settle(system)
    await driver.step(0.6 * start, StepPlan(duration_s=3 * cfg.step_s, slo_ms=cfg.slo_ms, min_samples=0), "warmup")
    await _settle(system)
    say(f"{system.name}: burst estimate {estimate['throughput_qps']} q/s; searching from {start:.0f} q/s")
    searched, steps = await find_max(_logged(system.name, system, driver, plan), start, cfg.search, clock.left)
    await _settle(system)  # the search ends on failed steps: their backlog must not reach the next ones
    best, at_max, confirming = await confirm_max(
        _logged(system.name, system, driver, plan, "confirm"), _best_step(steps), cfg.runs, clock.left
    )
    result: dict = {
        "capacity_estimate": estimate,
        "max_throughput_qps": best,
        "searched_max_qps": searched,
        "steps": steps,
        "confirming_steps": confirming,
        "at_max": at_max,
        "peak_throughput_qps": max(
            [s["throughput_qps"] for s in steps + confirming] + [estimate["throughput_qps"] or 0.0]
        ),
    }
    say(f"{system.name}: max sustainable {best} q/s (search: {searched}; a majority of {cfg.runs} steps must hold)")
    reference = {}
    for other, rate in common.items():
        if clock.left():
            await _settle(system)
            reference[other], _ = await median_step(
                _logged(system.name, system, driver, plan, f"at {other} max"), rate, cfg.runs, clock.left
            )
    result["at_common_loads"] = reference
    if system.name == "pipeline":
        if best and clock.left():
            await _settle(system)
            result["at_70pct"], result["at_70pct_runs"] = await median_step(
                _logged(system.name, system, driver, plan, "70% of max"), 0.7 * best, cfg.runs, clock.left
            )
        overload = max(2 * (best or 0.0), estimate["throughput_qps"] or 0.0) or 2 * start
        result["window_sweep"] = await _window_sweep(system, driver, cfg, clock, best, steps, overload)
    return result


def _logged(name: str, system: System, driver: Driver, plan: StepPlan, label: str = "sweep") -> Callable:
    async def step(rate: float) -> dict:
        result = await driver.step(rate, plan, label)
        if result["services_restarted"] or system.exited():
            result = await _repeat(name, system, driver, rate, plan, label, result)
        verdict = "ok " if result["ok"] else "FAIL"
        say(
            f"{name}: {verdict} offered {rate:7.1f} q/s -> {result['throughput_qps']:7.1f} q/s, "
            f"p50 {result['p50_ms']} p99 {result['p99_ms']} ms{' (aborted)' if result['aborted'] else ''} [{label}]"
        )
        return result

    return step


async def _settle(system: System) -> None:
    """Wait (at most a minute) until the system's processes are nearly idle: backlog answered."""
    await wait_quiet(
        {f"{system.name}:{r}": p for r, p in system.pids().items()}, max_pct=15.0, window_s=2.0, timeout_s=60.0
    )


async def _repeat(
    name: str, system: System, driver: Driver, rate: float, plan: StepPlan, label: str, failed: dict
) -> dict:
    """Kafka or PostgreSQL was restarted (other people's chaos tests share the machine) or a
    process of the system died: start what died, wait until it answers, measure once more."""
    say(f"{name}: services restarted: {failed['services_restarted']}; exited: {system.exited()}; repeating the step")
    respawned = system.respawn_exited()
    try:
        await driver.wait_ready(300.0, system.exited)
        if respawned:
            await wait_quiet({f"{system.name}:{r}": p for r, p in system.pids().items()})
    except (TimeoutError, RuntimeError) as exc:
        return {**failed, "repeat_error": str(exc)}
    result = await driver.step(rate, plan, label)
    result["repeated_after"] = {"services_restarted": failed["services_restarted"], "respawned": respawned}
    return result


def _best_step(steps: list[dict]) -> dict | None:
    good = [s for s in steps if s["ok"]]
    return max(good, key=lambda s: s["throughput_qps"]) if good else None


async def _window_sweep(
    system: System,
    driver: Driver,
    cfg: BenchConfig,
    clock: Clock,
    best: float | None,
    steps: list[dict],
    overload_qps: float,
) -> list[dict]:
    """Throughput against the batch window. For every window: the maximum at the SLO (a
    short search from the default window's maximum, or from the lowest rate tried when
    none was sustained) and the throughput at one overload rate, the same for every
    window (the pipeline's burst capacity), where bigger windows can fill bigger batches."""
    default = system.settings.batch_window_ms
    start = best or min(s["offered_qps"] for s in steps)
    plan = StepPlan(duration_s=cfg.step_s, slo_ms=cfg.slo_ms)
    search = SearchPlan(max_steps=cfg.window_steps, refine=1, up=1.3, down=1.5)
    # Overloaded on purpose: stop only when answers fall 6 s behind, so throughput is measured.
    heavy = StepPlan(duration_s=min(cfg.step_s, 6.0), slo_ms=cfg.slo_ms, abort_after_s=6.0, min_samples=0)
    overload = _logged("pipeline", system, driver, heavy, "overload")
    sweep = [
        {
            "window_ms": default,
            "max_throughput_qps": best,
            "steps": steps,
            "at_overload": await overload(overload_qps) if clock.left() else None,
        }
    ]
    for window in cfg.windows:
        if window == default or not clock.left():
            continue
        say(f"pipeline: restarting the stream processor with a {window} ms batch window")
        system.restart_streams(window)
        try:
            await driver.wait_ready(120.0, system.exited)
        except (TimeoutError, RuntimeError) as exc:
            sweep.append({"window_ms": window, "error": str(exc)})
            continue
        await driver.step(
            0.3 * start, StepPlan(duration_s=min(3.0, cfg.step_s), slo_ms=cfg.slo_ms, min_samples=0), "warmup"
        )
        name = f"pipeline@{window}ms"
        top, wsteps = await find_max(_logged(name, system, driver, plan), start, search, clock.left)
        at_overload = await _logged(name, system, driver, heavy, "overload")(overload_qps) if clock.left() else None
        sweep.append({"window_ms": window, "max_throughput_qps": top, "steps": wsteps, "at_overload": at_overload})
    for entry in sweep:
        entry["overload_throughput_qps"] = (entry.get("at_overload") or {}).get("throughput_qps")
    return sorted(sweep, key=lambda w: w["window_ms"])


async def _delete_topics(base: Settings, run_id: str) -> None:
    """Remove this run's topics (a benchmark leaves the broker as it found it)."""
    try:
        await delete_topics_async(base, f"{run_id}-")
    except Exception as exc:  # noqa: BLE001 - leftovers are harmless; say so and go on
        say(f"could not delete topics of {run_id}: {exc!r}")
