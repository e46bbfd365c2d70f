"""A first estimate of a system's capacity, from bursts, to size the warm-up and the search."""

from __future__ import annotations

from harness.bench.driver import Driver


async def estimate_capacity(driver: Driver, n: int) -> dict:
    """Bursts of growing size until one takes at least 1.5 s to answer."""
    result: dict = {}
    for _ in range(3):
        result = await driver.burst(n, timeout_s=30.0)
        rate = result["throughput_qps"]
        if not rate or (result["elapsed_s"] or 0) >= 1.5:
            break
        n = min(30_000, int(rate * 3))
    return result
