"""Finding a system's maximum sustainable throughput with a few bounded steps.

Bracket first: from a start rate, step up by `up` while steps are sustained, or down by
`down` while they are not, until one sustained and one failed rate bracket the maximum;
then bisect (geometrically) `refine` times. The maximum is the highest throughput
measured in a sustained step, not a rate that was never tried.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Step = Callable[[float], Awaitable[dict]]


@dataclass(frozen=True)
class SearchPlan:
    max_steps: int = 8
    refine: int = 2
    up: float = 1.5
    down: float = 1.6
    min_rate: float = 1.0
    resolution: float = 1.08  # stop bisecting when failed/sustained rates are this close


async def find_max(
    step: Step, start: float, plan: SearchPlan, time_left: Callable[[], bool]
) -> tuple[float | None, list[dict]]:
    """(maximum sustained throughput or None, every step's result in order)."""
    steps: list[dict] = []
    good: float | None = None  # highest sustained rate
    bad: float | None = None  # lowest failed rate
    refinements = 0
    rate = start
    while len(steps) < plan.max_steps and (not steps or time_left()):  # at least one step
        result = await step(rate)
        steps.append(result)
        if result["ok"]:
            good = rate if good is None else max(good, rate)
        else:
            bad = rate if bad is None else min(bad, rate)
        if good is None:
            rate /= plan.down
            if rate < plan.min_rate:
                break
        elif bad is None:
            rate *= plan.up
        elif bad <= good or refinements >= plan.refine or bad / good < plan.resolution:
            break
        else:
            rate = math.sqrt(good * bad)
            refinements += 1
    best = max((s["throughput_qps"] for s in steps if s["ok"]), default=None)
    return best, steps
