"""The faults, one coroutine each: `fault(run, phase, opts)` runs while the phase offers load.

Each waits until a given share of the cohort has been offered (so the fault lands under
load), checks that work is in flight at that moment (uncommitted batches, busy victim),
injects the fault, and records when it began and ended with that evidence.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from harness.chaos.run import Phase, PipelineRun
from runtime.services.kafka import start_kafka, stop_kafka, wait_for_kafka_async
from runtime.services.postgres import start_postgres, stop_postgres


@dataclass(frozen=True)
class Options:
    kills: int = 3  # worker SIGKILLs per worker_sigkill phase
    pause_s: float = 25.0  # SIGSTOP length: well past the 10 s session timeout
    pg_down_s: float = 10.0
    join_timeout_s: float = 300.0  # a restarted worker loads its model first


Fault = Callable[[PipelineRun, Phase, Options], Awaitable[None]]


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    fault: Fault
    workers: int = 2  # workers started with the pipeline
    standby: bool = False  # a held worker that the fault adds to the group


async def busiest_worker(run: PipelineRun, exclude: set[str] = frozenset()) -> tuple[str | None, float | None]:
    """The joined worker using the most CPU right now (the one most likely mid-batch)."""
    names = [n for n in run.fleet.names("workers") if n not in exclude and run.joined(n)]
    if not names:
        return None, None
    loads = await asyncio.gather(*(asyncio.to_thread(run.busy, n) for n in names))
    best = max(zip(names, loads), key=lambda nl: nl[1] or 0.0)
    return best


async def wait_for_victim(run: PipelineRun, opts: Options, exclude: set[str]) -> tuple[str, float | None]:
    """A joined worker to hit, waiting (bounded) for a restarted one to finish loading."""
    deadline = time.monotonic() + opts.join_timeout_s
    while time.monotonic() < deadline:
        name, cpu = await busiest_worker(run, exclude)
        if name is None:
            name, cpu = await busiest_worker(run)
        if name is not None:
            return name, cpu
        await asyncio.sleep(1.0)
    raise TimeoutError("no worker has joined the group to inject the fault into")


async def worker_sigkill(run: PipelineRun, phase: Phase, opts: Options) -> None:
    """SIGKILL a busy worker `kills` times (each a different one when possible), restart each."""
    last: set[str] = set()
    for k in range(opts.kills):
        await phase.at_fraction((k + 1) / (opts.kills + 1))
        inflight = await run.wait_inflight()
        victim, cpu = await wait_for_victim(run, opts, exclude=last)
        t = time.time()
        run.fleet.kill(victim)
        run.start(victim, "workers")
        phase.record(f"SIGKILL {victim}", t, inflight_batches=inflight, victim_cpu_pct=cpu)
        last = {victim}


async def streams_sigkill(run: PipelineRun, phase: Phase, opts: Options) -> None:
    """SIGKILL the stream processor while questions sit in its batch buffers; restart it."""
    await phase.at_fraction(0.5)
    unbatched = await run.wait_unbatched()
    t = time.time()
    run.fleet.kill("streams")
    run.start("streams", "streams")
    rejoined = await run.wait_joined("streams", timeout_s=opts.join_timeout_s)
    phase.record(
        "SIGKILL streams",
        t,
        unbatched_questions=unbatched,
        rejoined_after_s=round(time.time() - t, 1) if rejoined else None,
    )


async def kafka_restart(run: PipelineRun, phase: Phase, opts: Options) -> None:
    """Stop the broker (SIGTERM, controlled shutdown) and start it again."""
    await phase.at_fraction(0.4)
    inflight = await run.wait_inflight()
    t = time.time()
    try:
        stopped = await asyncio.to_thread(stop_kafka, run.settings)
    finally:
        started = await asyncio.to_thread(start_kafka, run.settings)
        await wait_for_kafka_async(run.settings, timeout_s=180)
    phase.record("kafka restart", t, time.time(), inflight_batches=inflight, broker_stop=stopped, broker_start=started)


async def postgres_stop(run: PipelineRun, phase: Phase, opts: Options) -> None:
    """Stop PostgreSQL (fast shutdown) for `pg_down_s` seconds under load."""
    await phase.at_fraction(0.4)
    inflight = await run.wait_inflight()
    t = time.time()
    try:
        await asyncio.to_thread(stop_postgres, run.settings)
        await asyncio.sleep(opts.pg_down_s)
    finally:
        await asyncio.to_thread(start_postgres, run.settings)
    phase.record(f"postgres down {opts.pg_down_s:.0f}s", t, time.time(), inflight_batches=inflight)


async def worker_pause(run: PipelineRun, phase: Phase, opts: Options) -> None:
    """SIGSTOP a busy worker past its session timeout, SIGCONT it, and see it rejoin."""
    await phase.at_fraction(0.3)
    inflight = await run.wait_inflight()
    victim, cpu = await wait_for_victim(run, opts, exclude=set())
    joins_before = run.log_count(victim, "Joined group")
    t = time.time()
    run.fleet.pause(victim)
    await asyncio.sleep(opts.pause_s)
    run.fleet.resume(victim)
    resumed = time.time()
    rejoin_s = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if run.log_count(victim, "Joined group") > joins_before:
            rejoin_s = round(time.time() - resumed, 1)
            break
        await asyncio.sleep(0.5)
    phase.record(
        f"SIGSTOP {victim} {opts.pause_s:.0f}s",
        t,
        resumed,
        inflight_batches=inflight,
        victim_cpu_pct=cpu,
        rejoined_after_resume_s=rejoin_s,
    )


async def rebalance(run: PipelineRun, phase: Phase, opts: Options) -> None:
    """Add a worker (the warm standby joins), then remove one gracefully, batches in flight."""
    await phase.at_fraction(0.3)
    inflight = await run.wait_inflight()
    t = time.time()
    if "standby" in run.fleet.slots and not run.joined("standby"):
        run.fleet.resume("standby")
        added = "standby"
    else:  # no held standby (already used): a fresh worker, model load included
        added = f"worker-{len(run.fleet.names('workers')) + 1}"
        run.start(added, "workers")
    joined = await run.wait_joined(added, timeout_s=opts.join_timeout_s)
    phase.record(
        f"add {added}", t, inflight_batches=inflight, joined_after_s=round(time.time() - t, 1) if joined else None
    )

    await phase.at_fraction(0.6)
    inflight = await run.wait_inflight()
    victim, cpu = await busiest_worker(run, exclude={added})
    if victim is None:
        return
    t = time.time()
    rc = await asyncio.to_thread(run.fleet.terminate, victim)
    phase.record(
        f"remove {victim} (SIGTERM)", t, time.time(), inflight_batches=inflight, victim_cpu_pct=cpu, exit_code=rc
    )


def workers_for(scenario: Scenario, opts: Options) -> int:
    """Workers to start: worker_sigkill hits a different worker each time while the others
    serve, so it needs one more than it kills (three at most; restarted ones rejoin)."""
    if scenario.fault is worker_sigkill:
        return max(2, min(scenario.workers, opts.kills + 1))
    return scenario.workers


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario(
            "worker_sigkill", "SIGKILL of a busy worker mid-batch, restarted (--kills times)", worker_sigkill, workers=3
        ),
        Scenario(
            "streams_sigkill", "SIGKILL of the stream processor with questions buffered, restarted", streams_sigkill
        ),
        Scenario("kafka_restart", "the Kafka broker stopped and started under load", kafka_restart),
        Scenario("postgres_stop", "PostgreSQL stopped for 10 s under load", postgres_stop),
        Scenario("worker_pause", "a busy worker SIGSTOPped past its session timeout, then SIGCONT", worker_pause),
        Scenario("rebalance", "a worker added and one removed while batches are in flight", rebalance, standby=True),
    ]
}
