"""Latency over time rather than per step: a load that changes under a running system
(the controller experiment) is judged by rolling windows of the questions sent in them."""

from __future__ import annotations

from harness.bench.collect import Collector
from harness.bench.stats import INF, latency_summary, ms, percentile


def latencies(collector: Collector, ids: list[str]) -> list[tuple[float, float]]:
    """(intended send time, latency ms) per question; inf for an unanswered one."""
    out = []
    for i in ids:
        sent, got = collector.sent[i], collector.got.get(i)
        out.append((sent.intended, 1000 * (got.received - sent.intended) if got else INF))
    return out


def rolling_p99(
    samples: list[tuple[float, float]], t0: float, window_s: float = 2.0, every_s: float = 0.5
) -> list[dict]:
    """p99 of the questions sent in each `window_s` window, one window ending every
    `every_s` seconds; `t` is the window's end in seconds after `t0`."""
    if not samples:
        return []
    end = max(t for t, _ in samples)
    out = []
    t = t0 + window_s
    while t <= end + every_s:
        inside = [lat for sent, lat in samples if t - window_s <= sent < t]
        if inside:
            out.append({"t": round(t - t0, 2), "p99_ms": ms(percentile(inside, 0.99)), "n": len(inside)})
        t += every_s
    return out


def convergence_s(series: list[dict], step_at: float, until: float, target_ms: float) -> float | None:
    """Seconds after the step (at `step_at`, relative like the series' `t`) until the
    rolling p99 stays at or under `target_ms` up to `until`: the end of the last window
    over target, 0 when none was. None when the last window is still over target.
    A window with an unanswered question (p99 None) counts as over."""
    after = [w for w in series if step_at < w["t"] <= until]
    if not after:
        return None
    over = [w for w in after if w["p99_ms"] is None or w["p99_ms"] > target_ms]
    if not over:
        return 0.0
    if over[-1] is after[-1]:
        return None
    return round(over[-1]["t"] - step_at, 2)


def summary(samples: list[tuple[float, float]], seconds: float) -> dict:
    """p50/p95/p99 over all questions (unanswered as late) and answered per second."""
    lat = [x for _, x in samples]
    answered = sum(1 for x in lat if x != INF)
    return {
        **latency_summary(lat),
        "sent": len(lat),
        "answered": answered,
        "throughput_qps": round(answered / max(seconds, 1e-3), 1),
    }
