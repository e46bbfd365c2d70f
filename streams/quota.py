"""Per-service token buckets, so one service cannot starve the others.

Each stream process holds its own buckets; with P stream processes a service's traffic
(keyed by user) spreads over all of them, so its effective quota is about P x the rate.
An over-quota question is not dropped: it is answered `rejected` with the reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up."""

    rate: float
    burst: float
    tokens: float
    updated: float

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Quotas:
    """One bucket per service; `overrides` maps a service to its own (rate, burst)."""

    def __init__(self, rate: float, burst: float, overrides: dict[str, tuple[float, float]]) -> None:
        self.rate = rate
        self.burst = burst
        self.overrides = overrides
        self._buckets: dict[str, TokenBucket] = {}
        self.rejected: dict[str, int] = {}

    def allow(self, service: str, now: float | None = None) -> bool:
        """True when `service` may send one more question now."""
        rate, burst = self.overrides.get(service, (self.rate, self.burst))
        if rate <= 0:
            return True
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(service)
        if bucket is None:
            bucket = self._buckets[service] = TokenBucket(rate, burst, burst, now)
        if bucket.take(now):
            return True
        self.rejected[service] = self.rejected.get(service, 0) + 1
        return False
