"""The load the experiments are sized by: a rate given on the command line, or (c)'s
maximum sustainable throughput from the main run (at the configured window, else at the
best window of the sweep, else half its peak), or, when (c) was not run, a burst estimate
in the experiment's own pipeline (halved: a burst's throughput ignores latency)."""

from __future__ import annotations

from harness.bench.capacity import estimate_capacity
from harness.bench.experiments.pipeline import Context, Running


def from_main_run(pipeline: dict | None, given_qps: float | None) -> tuple[float | None, str]:
    """(rate, where it came from); None when it has to be measured."""
    if given_qps:
        return given_qps, "--experiment-rate"
    pipeline = pipeline or {}
    if pipeline.get("max_throughput_qps"):
        return float(pipeline["max_throughput_qps"]), "(c)'s maximum sustainable throughput in this run"
    swept = [w for w in pipeline.get("window_sweep") or [] if w.get("max_throughput_qps")]
    if swept:
        best = max(swept, key=lambda w: w["max_throughput_qps"])
        return float(best["max_throughput_qps"]), (
            f"(c)'s maximum sustainable throughput with its best batch window "
            f"({best['window_ms']} ms; none at the configured window)"
        )
    if pipeline.get("peak_throughput_qps"):
        return 0.5 * float(pipeline["peak_throughput_qps"]), "half of (c)'s peak throughput (no load met the SLO)"
    return None, "not measured"


async def reference_rate(ctx: Context, pipe: Running) -> tuple[float, str]:
    """`ctx.reference_qps`, else half of a burst's throughput through `pipe` (at least 2 q/s)."""
    if ctx.reference_qps:
        return ctx.reference_qps, ctx.reference_source
    burst = await estimate_capacity(pipe.driver, 200)
    return max(
        2.0, 0.5 * (burst["throughput_qps"] or 4.0)
    ), f"half of a burst's throughput ({burst['throughput_qps']} q/s)"
