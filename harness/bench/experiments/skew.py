"""Does load-aware routing (streams/routing.py) spread a skewed load over the workers?

Half the questions (`HOT_SHARE`) come from one user of one service, so without routing
that cluster key's batches all hash to one `batches` partition, and its worker carries
most of the work. The same offered load (and the same arrivals and questions) runs with
`load_aware_routing` off, then on (only the stream processor restarts; the 2 workers
keep their models). Reported per run: batches and questions per partition and per
worker, max-over-mean of both, p99 and throughput, and the router's own counters.
"""

from __future__ import annotations

import random

from harness.bench.driver import StepPlan
from harness.bench.experiments.pipeline import Context, Running, isolated_pipeline
from harness.bench.experiments.probes import BatchCounter, cache_hit_rates, stream_metrics, worker_statuses
from harness.bench.experiments.reference import reference_rate

HOT_SHARE = 0.5
WORKERS = 2
LOAD = 0.4  # share of (c)'s maximum: 2 workers share 2 cores; at 0.6 both runs saturate the CPU (p99 > 200 ms)
SEED = 37


async def run(ctx: Context) -> dict:
    seconds = 3 * ctx.step_s  # quick 12 s, full 24 s per run
    update = {"load_aware_routing": False, "adaptive_batching": False}
    workload = ctx.workload(hot_share=HOT_SHARE)
    async with isolated_pipeline(ctx, "skew", update, workload, workers=WORKERS, health=True) as pipe:
        rate, source = await reference_rate(ctx, pipe)
        rate *= LOAD
        out: dict = {
            "hot_share": HOT_SHARE,
            "workers": WORKERS,
            "offered_qps": round(rate, 1),
            "reference_source": source,
            "seconds": seconds,
            "startup_s": pipe.startup_s,
        }
        await pipe.warm_up(0.3 * rate)
        out["routing_off"] = await _measure(pipe, rate, seconds, ctx.slo_ms)
        pipe.system.restart_streams_with({"load_aware_routing": True})
        await pipe.restarted(120.0)
        await pipe.warm_up(0.3 * rate)  # the router learns the workers' status
        out["routing_on"] = await _measure(pipe, rate, seconds, ctx.slo_ms)
    return out


async def _measure(pipe: Running, rate: float, seconds: float, slo_ms: float) -> dict:
    settings = pipe.system.settings
    pipe.driver.rng = random.Random(SEED)
    pipe.driver.workload.rng = random.Random(SEED)
    before = await worker_statuses(settings)
    counter = BatchCounter(settings)
    await counter.start()
    try:
        step = await pipe.driver.step(rate, StepPlan(duration_s=seconds, slo_ms=slo_ms, min_samples=0), "skew")
    finally:
        counts = counter.take()
        await counter.stop()
    statuses = await worker_statuses(settings)
    metrics = await stream_metrics(pipe.health_port) or {}
    owners = {str(p): _role(node) for node, row in statuses.items() for p in row.get("partitions", [])}
    per_worker: dict[str, dict[str, int]] = {}
    for part, n in counts["batches"].items():
        w = per_worker.setdefault(owners.get(part, "unassigned"), {"batches": 0, "questions": 0})
        w["batches"] += n
        w["questions"] += counts["questions"].get(part, 0)
    return {
        "p50_ms": step["p50_ms"],
        "p99_ms": step["p99_ms"],
        "throughput_qps": step["throughput_qps"],
        "ok": step["ok"],
        "aborted": step["aborted"],
        "batch_size": step["batch_size"],
        "call_size": step["call_size"],
        "per_partition": counts,
        "per_worker": per_worker,
        "max_over_mean": {
            "partition_batches": _max_over_mean(counts["batches"].values()),
            "partition_questions": _max_over_mean(counts["questions"].values()),
            "worker_questions": _max_over_mean([w["questions"] for w in per_worker.values()], len(statuses) or None),
        },
        "worker_queue_len": {_role(node): row.get("queue_len") for node, row in statuses.items()},
        "router": metrics.get("routing"),
        "cache_hit_rates": cache_hit_rates(before, statuses),
    }


def _role(node_id: str) -> str:
    """`worker-1` out of the node id (group id and instance, both long and run-specific)."""
    at = node_id.rfind("worker-")
    return node_id[at:] if at >= 0 else node_id


def _max_over_mean(values: object, n: int | None = None) -> float | None:
    """Largest share over the mean share: 1.0 is perfectly even; `n` counts members with none."""
    vals = list(values)  # type: ignore[call-overload]
    total, count = sum(vals), n or len(vals)
    return round(max(vals) / (total / count), 2) if vals and total and count else None
