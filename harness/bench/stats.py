"""Percentiles and per-step summaries: latency, batch sizes, time per stage."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

from harness.bench.collect import Got, Sent

INF = float("inf")
STAGES = ("ingest_ms", "batch_wait_ms", "queue_ms", "inference_ms")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of `values` (may hold inf for unanswered questions)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def ms(value: float) -> float | None:
    """Milliseconds for JSON: None for inf or nan (unanswered, nothing measured)."""
    return None if math.isinf(value) or math.isnan(value) else round(value, 1)


def latency_summary(latencies_ms: Sequence[float]) -> dict:
    return {
        "p50_ms": ms(percentile(latencies_ms, 0.50)),
        "p95_ms": ms(percentile(latencies_ms, 0.95)),
        "p99_ms": ms(percentile(latencies_ms, 0.99)),
        "max_ms": ms(max(latencies_ms)) if latencies_ms else None,
    }


def size_summary(sizes: Iterable[int], max_size: int | None) -> dict | None:
    sizes = list(sizes)
    if not sizes:
        return None
    mean = sum(sizes) / len(sizes)
    return {
        "count": len(sizes),
        "mean": round(mean, 2),
        "p50": percentile(sizes, 0.5),
        "p99": percentile(sizes, 0.99),
        "max": max(sizes),
        "fill": round(mean / max_size, 3) if max_size else None,
    }


def batch_sizes(got: Sequence[Got]) -> list[int]:
    """Questions per batch, from the batch id each answer carries."""
    return list(Counter(g.batch_id for g in got if g.batch_id).values())


def call_sizes(got: Sequence[Got]) -> list[int]:
    """Questions per reasoner call: answers of one call share their answered time and
    inference time (a worker answers all the batches it polled in one call)."""
    keys = [(g.answered_ts, g.latency.get("inference_ms")) for g in got if g.latency and g.answered_ts]
    return list(Counter(keys).values())


def stage_summary(pairs: Sequence[tuple[Sent, Got]]) -> dict | None:
    """Mean and p99 per stage of the answers' latency breakdown, plus `deliver_ms`: from
    the end of inference to the harness reading the answer (database, produce, commit, fetch)."""
    rows = [(s, g) for s, g in pairs if g.latency]
    if not rows:
        return None
    out = {}
    for stage in STAGES:
        values = [float(g.latency.get(stage, 0.0)) for _, g in rows]
        out[stage] = {"mean": round(sum(values) / len(values), 1), "p99": ms(percentile(values, 0.99))}
    deliver = [max(0.0, 1000 * (g.received - s.intended) - float(g.latency.get("total_ms", 0.0))) for s, g in rows]
    out["deliver_ms"] = {"mean": round(sum(deliver) / len(deliver), 1), "p99": ms(percentile(deliver, 0.99))}
    return out


def dominant_stage(stages: dict | None) -> str | None:
    """The stage with the largest mean share of end-to-end latency."""
    if not stages:
        return None
    return max(stages, key=lambda name: stages[name]["mean"])
