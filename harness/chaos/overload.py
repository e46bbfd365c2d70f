"""Backpressure under overload: offer twice the measured capacity and watch memory.

1. capacity: a burst of questions is offered at once; the answer rate between the 10th and
   90th percentile of arrivals is what the pipeline (one stream processor, one worker) does;
2. overload: twice that rate for `window_s` seconds, sampling every second the RSS of the
   stream processor and the worker and where the backlog sits (questions not yet batched,
   batches not yet answered: both in Kafka, not in memory, if backpressure works);
3. drain and verify the overload cohort like any other phase.

"Flat" means the peak stays within 10% of the RSS at the start of the window and the last
half of the window adds no more than 5%.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from harness.chaos.run import Phase, PipelineRun
from harness.chaos.scenarios import Options

MiB = 1024 * 1024


@dataclass
class Series:
    """RSS samples (seconds since the window opened, bytes) of one process."""

    samples: list[tuple[float, int]] = field(default_factory=list)

    def at(self, t: float) -> int:
        return min(self.samples, key=lambda s: abs(s[0] - t))[1]

    def summary(self, window_s: float) -> dict[str, float | bool]:
        if not self.samples:
            return {"start_mib": 0.0, "peak_mib": 0.0, "end_mib": 0.0, "flat": False}
        start, end = self.samples[0][1], self.samples[-1][1]
        peak = max(v for _, v in self.samples)
        mid = self.at(window_s / 2)
        return {
            "start_mib": round(start / MiB, 1),
            "peak_mib": round(peak / MiB, 1),
            "end_mib": round(end / MiB, 1),
            "flat": peak - start <= 0.10 * start and end - mid <= 0.05 * start,
        }


@dataclass
class Overload:
    capacity_qps: float = 0.0
    offered_qps: float = 0.0
    window_s: float = 60.0
    rss: dict[str, Series] = field(default_factory=dict)
    backlog: list[tuple[float, int | None, int | None]] = field(default_factory=list)  # t, unbatched, inflight
    answered_in_window: int = 0  # first answers that arrived during the window (what it kept up with)

    def memory(self) -> dict[str, dict[str, float | bool]]:
        return {name: series.summary(self.window_s) for name, series in self.rss.items()}

    def backlog_summary(self) -> dict[str, int | None]:
        def last(i: int) -> int | None:
            vals = [b[i] for b in self.backlog if b[i] is not None]
            return vals[-1] if vals else None

        def peak(i: int) -> int | None:
            vals = [b[i] for b in self.backlog if b[i] is not None]
            return max(vals) if vals else None

        return {
            "unbatched_questions_end": last(1),
            "unbatched_questions_peak": peak(1),
            "inflight_batches_end": last(2),
            "inflight_batches_peak": peak(2),
        }


async def measure_capacity(run: PipelineRun, n: int, seed: int, timeout_s: float) -> float:
    """Answers per second while a burst of `n` questions drains (10th..90th percentile)."""
    phase = Phase(run, "capacity", n, rate=10_000, seed=seed)
    await phase.sender.run(phase.asks)
    ids = sorted(phase.sender.acked)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not run.watcher.all_answered(ids):
        await asyncio.sleep(0.5)
    arrivals = sorted(run.watcher.first_at[q] for q in ids if q in run.watcher.first_at)
    if len(arrivals) < 10:
        raise RuntimeError(f"only {len(arrivals)} of {n} capacity questions were answered in {timeout_s:.0f}s")
    lo, hi = arrivals[len(arrivals) // 10], arrivals[(9 * len(arrivals)) // 10]
    return (0.8 * len(arrivals)) / max(1e-3, hi - lo)


def sampler(result: Overload, names: list[str]):
    """A 'fault' that only watches: RSS and backlog every second while the phase offers load."""

    async def sample(run: PipelineRun, phase: Phase, opts: Options) -> None:
        for name in names:
            result.rss[name] = Series()
        t0 = time.monotonic()
        while not phase.sender.done.is_set() and time.monotonic() - t0 <= result.window_s + 1:
            t = time.monotonic() - t0
            for name in names:
                rss = run.fleet.rss(name)
                if rss is not None:
                    result.rss[name].samples.append((t, rss))
            unbatched, inflight = await asyncio.gather(run.unbatched_questions(), run.inflight_batches())
            result.backlog.append((t, unbatched, inflight))
            await asyncio.sleep(max(0.0, t0 + t + 1.0 - time.monotonic()))
        opened = time.time() - (time.monotonic() - t0)
        result.answered_in_window = sum(1 for at in run.watcher.first_at.values() if at >= opened)
        phase.record(
            "overload window",
            opened,
            time.time(),
            from_end=True,
            answered_qps_in_window=round(result.answered_in_window / max(1.0, time.time() - opened), 1),
            offered_qps=round(result.offered_qps, 1),
            capacity_qps=round(result.capacity_qps, 1),
        )

    return sample
