"""`autoglm chaos`: run the fault scenarios against the real services and report.

Each scenario gets its own topic prefix and its own child processes (`--shared`: one
pipeline, scenarios as consecutive phases). Every phase is bounded in time: sending, fault
injection and draining each have a deadline, so a hang shows up as lost questions, not as
a run that never ends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from harness.chaos.overload import Overload, measure_capacity, sampler
from harness.chaos.report import ScenarioResult, as_json, as_table, machine, totals
from harness.chaos.run import Phase, PipelineRun, isolated_settings
from harness.chaos.scenarios import SCENARIOS, Options, Scenario, workers_for
from schemas.settings import Settings, get_settings

OVERLOAD = "overload"
ALL = [*SCENARIOS, OVERLOAD]


@dataclass(frozen=True)
class Plan:
    n: int
    rate: float  # questions per second offered during a phase
    drain_s: float  # after sending: how long answers may take before the rest counts as lost
    partitions: int
    overload_s: float
    opts: Options
    log_dir: Path


def say(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _crashes_between(run: PipelineRun, start: float, end: float) -> list:
    return [c for c in run.fleet.crashes if start <= c.at <= end]


async def run_phase(run: PipelineRun, scenario: Scenario, plan: Plan, seed: int) -> ScenarioResult:
    say(f"{scenario.name}: {plan.n} questions at {plan.rate:.0f}/s; {scenario.summary}")
    phase = Phase(run, scenario.name, plan.n, plan.rate, seed)
    t0 = time.time()
    tally = await phase.drive(lambda r, p: scenario.fault(r, p, plan.opts), plan.drain_s)
    result = ScenarioResult(
        scenario.name,
        scenario.summary,
        tally,
        phase.faults,
        _crashes_between(run, t0, time.time()),
        seconds=time.time() - t0,
        rate_qps=plan.rate,
        extra={
            "latency_s": phase.latency_s(),
            "load": {"resends": phase.sender.resends, "producers": phase.sender.producers},
        },
    )
    say(
        f"{scenario.name}: sent {tally.sent}, answered {tally.answered}, lost {tally.lost}, "
        f"duplicate claims {tally.duplicate_claims} (missing {tally.missing_claims}), "
        f"duplicates on topic {tally.duplicates_on_topic}, "
        f"recovery {result.recovery_s} s"
    )
    return result


async def run_isolated(base: Settings, plan: Plan, scenario: Scenario, seed: int) -> ScenarioResult:
    settings = isolated_settings(base, scenario.name.replace("_", ""), plan.partitions)
    log_dir = plan.log_dir / scenario.name
    workers = workers_for(scenario, plan.opts)
    say(
        f"{scenario.name}: starting stream processor and {workers} worker(s) on {settings.topic_prefix}* "
        f"(logs {log_dir})"
    )
    async with PipelineRun.open(settings, log_dir, workers, scenario.standby) as run:
        return await run_phase(run, scenario, plan, seed)


async def run_shared(base: Settings, plan: Plan, scenarios: list[Scenario]) -> list[ScenarioResult]:
    settings = isolated_settings(base, "shared", plan.partitions)
    workers = max(workers_for(s, plan.opts) for s in scenarios)
    standby = any(s.standby for s in scenarios)
    say(
        f"shared pipeline: stream processor and {workers} worker(s){' + standby' if standby else ''} "
        f"on {settings.topic_prefix}* (logs {plan.log_dir})"
    )
    results = []
    async with PipelineRun.open(settings, plan.log_dir, workers, standby) as run:
        for i, scenario in enumerate(scenarios):
            results.append(await run_phase(run, scenario, plan, seed=100 + i))
    return results


async def run_overload(base: Settings, plan: Plan) -> ScenarioResult:
    settings = isolated_settings(base, OVERLOAD, plan.partitions)
    log_dir = plan.log_dir / OVERLOAD
    say(f"overload: starting stream processor and 1 worker on {settings.topic_prefix}* (logs {log_dir})")
    result = Overload(window_s=plan.overload_s)
    async with PipelineRun.open(settings, log_dir, workers=1, standby=False) as run:
        burst = max(500, min(plan.n, 3000))
        result.capacity_qps = await measure_capacity(run, burst, seed=7, timeout_s=plan.drain_s + burst / 20)
        result.offered_qps = 2 * result.capacity_qps
        n = int(result.offered_qps * plan.overload_s)
        say(
            f"overload: capacity {result.capacity_qps:.0f} answers/s; offering {result.offered_qps:.0f}/s "
            f"for {plan.overload_s:.0f} s ({n} questions), sampling RSS every second"
        )
        phase = Phase(run, OVERLOAD, n, result.offered_qps, seed=8)
        t0 = time.time()
        drain = plan.drain_s + plan.overload_s * 2
        tally = await phase.drive(lambda r, p: sampler(result, ["streams", "worker-1"])(r, p, plan.opts), drain)
    out = ScenarioResult(
        OVERLOAD,
        f"2x capacity for {plan.overload_s:.0f} s, RSS sampled every second",
        tally,
        phase.faults,
        seconds=time.time() - t0,
        rate_qps=result.offered_qps,
        extra={
            "latency_s": phase.latency_s(),
            "capacity_qps": round(result.capacity_qps, 1),
            "memory": result.memory(),
            "backlog": result.backlog_summary(),
            "rss_samples_mib": {k: [round(v / 2**20, 1) for _, v in s.samples] for k, s in result.rss.items()},
        },
    )
    say(f"overload: memory {result.memory()}; backlog {result.backlog_summary()}")
    return out


async def run_all(names: list[str], plan: Plan, shared: bool) -> list[ScenarioResult]:
    """Run the named scenarios; each result is also appended to <log_dir>/results.jsonl as
    soon as it is known, so an interrupted run keeps what it measured."""
    base = get_settings()
    chosen = [SCENARIOS[n] for n in names if n != OVERLOAD]
    results: list[ScenarioResult] = []

    def keep(result: ScenarioResult) -> None:
        results.append(result)
        plan.log_dir.mkdir(parents=True, exist_ok=True)
        with (plan.log_dir / "results.jsonl").open("ab") as fh:
            fh.write(orjson.dumps({"scenario": result.name, **result.to_json()}) + b"\n")

    try:
        if shared and chosen:
            for result in await run_shared(base, plan, chosen):
                keep(result)
        else:
            for i, scenario in enumerate(chosen):
                keep(await run_isolated(base, plan, scenario, seed=100 + i))
        if OVERLOAD in names:
            keep(await run_overload(base, plan))
    finally:
        if any(n in names for n in ("kafka_restart", "postgres_stop")):
            ensure_services_up(base)
    return results


def ensure_services_up(settings: Settings, strict: bool = False) -> None:
    """Kafka and PostgreSQL up (after a run: back as they were, other people's tests use them
    too). Unless `strict`, a failure is reported, not raised, so results are still printed."""
    from runtime.services import up

    try:
        with contextlib.redirect_stdout(sys.stderr):
            up(settings)
    except (RuntimeError, TimeoutError, OSError) as exc:
        if strict:
            raise
        say(f"could not bring Kafka and PostgreSQL back up: {exc}; run `autoglm up`")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="autoglm chaos", description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=5000, help="questions per scenario (default 5000)")
    p.add_argument("--scenario", action="append", choices=ALL, help="repeatable; default: all")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument(
        "--rate",
        type=float,
        default=20.0,
        help="questions/s offered (default 20, lowered so a phase sends for at least 30 s)",
    )
    p.add_argument("--drain-s", type=float, default=240.0, help="how long answers may lag behind sending")
    p.add_argument("--kills", type=int, default=3, help="worker SIGKILLs in worker_sigkill")
    p.add_argument("--pause-s", type=float, default=25.0, help="SIGSTOP length in worker_pause")
    p.add_argument("--overload-s", type=float, default=60.0, help="length of the 2x overload window")
    p.add_argument("--partitions", type=int, default=6)
    p.add_argument("--shared", action="store_true", help="one pipeline, scenarios as consecutive phases")
    p.add_argument("--log-dir", type=Path, help="child process logs (default .state/chaos/<time>)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios; exit 1 if anything was lost or doubled."""
    args = build_parser().parse_args(argv)
    settings = get_settings()
    names = args.scenario or ALL
    plan = Plan(
        n=args.n,
        rate=min(args.rate, max(1.0, args.n / 30.0)),
        drain_s=args.drain_s,
        partitions=args.partitions,
        overload_s=args.overload_s,
        opts=Options(kills=args.kills, pause_s=args.pause_s),
        log_dir=args.log_dir or settings.state_dir / "chaos" / time.strftime("%Y%m%d-%H%M%S"),
    )
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # a broker restart is expected noise here
    ensure_services_up(settings, strict=True)
    t0 = time.time()
    results = asyncio.run(run_all(names, plan, args.shared))
    context = {"machine": machine(), "n": args.n, "seconds": round(time.time() - t0, 1), "log_dir": str(plan.log_dir)}
    if args.json:
        print(orjson.dumps(as_json(results, context)).decode())
    else:
        print(as_table(results, context))
    total = totals(results)
    return 0 if total["lost"] == 0 and total["duplicate_claims"] == 0 and total["duplicates_on_topic"] == 0 else 1
