"""Repeated steps: a maximum and a 70 %-load figure that one lucky (or unlucky) step cannot make.

A search step lasts a few seconds, and this machine is shared and noisy: the first full run
with the pipelined worker found (c) sustaining 490 q/s in one 4-s step and failing at 321
q/s minutes later. So the maximum reported is the highest rate at which a majority of
`runs` steps hold the SLO (the search's own step counts as the first), stepping down by
`back_off` when they do not; figures at a fixed load are the median of `runs` steps.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

Step = Callable[[float], Awaitable[dict]]


def _median_by(results: list[dict], key: str) -> dict:
    """The result whose `key` is the median (a missing value sorts as worst)."""
    ordered = sorted(results, key=lambda r: r.get(key) if r.get(key) is not None else float("inf"))
    return ordered[len(ordered) // 2]


async def confirm_max(
    step: Step,
    at_max: dict | None,
    runs: int,
    time_left: Callable[[], bool],
    tries: int = 3,
    back_off: float = 0.85,
) -> tuple[float | None, dict | None, list[dict]]:
    """(confirmed maximum throughput, its representative step, the extra steps taken)."""
    if at_max is None:
        return None, None, []
    rate, first, taken = at_max["offered_qps"], at_max, []
    for attempt in range(tries):
        results = [first]
        while len(results) < runs and time_left():
            results.append(await step(rate))
        taken += results if attempt else results[1:]
        held = [r for r in results if r["ok"]]
        if len(held) * 2 > len(results):
            return _median_by(results, "throughput_qps")["throughput_qps"], _median_by(held, "p99_ms"), taken
        if not time_left():
            break
        rate *= back_off
        first = await step(rate)
    return None, None, taken


async def median_step(step: Step, rate: float, runs: int, time_left: Callable[[], bool]) -> tuple[dict, list[dict]]:
    """(the step with the median p99 of `runs` steps at `rate`, all of them)."""
    results = [await step(rate)]
    while len(results) < runs and time_left():
        results.append(await step(rate))
    return _median_by(results, "p99_ms"), results
