"""The benchmark's confirmation of a maximum: a majority of repeated steps must hold the SLO."""

from __future__ import annotations

import asyncio

from harness.bench.confirm import confirm_max, median_step


def _stepper(verdicts: dict[float, list[bool]]):  # noqa: ANN202
    calls: list[float] = []

    async def step(rate: float) -> dict:
        calls.append(rate)
        ok = verdicts[rate].pop(0)
        return {"offered_qps": rate, "throughput_qps": rate - len(calls), "ok": ok, "p99_ms": 100.0 if ok else 400.0}

    return step, calls


def test_a_lucky_step_is_not_a_maximum() -> None:
    lucky = {"offered_qps": 100.0, "throughput_qps": 100.0, "ok": True, "p99_ms": 150.0}
    step_100, calls_100 = _stepper({100.0: [False, False], 85.0: [True, True, False]})
    best, at, taken = asyncio.run(confirm_max(step_100, lucky, runs=3, time_left=lambda: True))
    assert calls_100 == [100.0, 100.0, 85.0, 85.0, 85.0]  # two repeats fail: 15 % lower, three steps
    assert at is not None and at["offered_qps"] == 85.0 and at["ok"]
    assert best is not None and best < 85.0 and len(taken) == 5


def test_a_held_maximum_is_kept_and_none_stays_none() -> None:
    step, calls = _stepper({100.0: [True, False]})
    first = {"offered_qps": 100.0, "throughput_qps": 99.0, "ok": True, "p99_ms": 120.0}
    best, at, taken = asyncio.run(confirm_max(step, first, runs=3, time_left=lambda: True))
    assert calls == [100.0, 100.0] and at is not None and at["offered_qps"] == 100.0 and len(taken) == 2
    assert asyncio.run(confirm_max(step, None, runs=3, time_left=lambda: True)) == (None, None, [])


def test_median_step_reports_the_median_p99() -> None:
    p99s = iter([300.0, 120.0, 150.0])

    async def step(rate: float) -> dict:
        return {"offered_qps": rate, "p99_ms": next(p99s)}

    chosen, runs = asyncio.run(median_step(step, 50.0, runs=3, time_left=lambda: True))
    assert chosen["p99_ms"] == 150.0 and len(runs) == 3
