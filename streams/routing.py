"""Load-aware routing of batches to `batches` partitions.

Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam, 2018): each
partition owns several points on a hash ring; a cluster key goes to the first partition
clockwise from its hash whose load is below (1 + epsilon) x the mean load, so a user's
batches stay on one partition while it is not overloaded, and no partition takes more
than its bounded share. Load is the number of batches routed in a sliding window.

Workers publish their status (schemas.worker_status); partitions held by a worker that
lags (queue or load ratio well above the others') count as full, so batches spill to
partitions of less-loaded workers until it catches up.
"""

from __future__ import annotations

import bisect
import hashlib
import time
from collections import deque

from schemas.worker_status import WorkerStatus

POINTS_PER_PARTITION = 64


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class BoundedLoadRouter:
    """Chooses a partition per cluster key."""

    def __init__(self, partitions: int, epsilon: float = 0.25, window_s: float = 5.0, status_ttl_s: float = 10.0) -> None:
        self.partitions = partitions
        self.epsilon = epsilon
        self.window_s = window_s
        self.status_ttl_s = status_ttl_s
        ring = sorted((_hash(f"p{p}#{i}"), p) for p in range(partitions) for i in range(POINTS_PER_PARTITION))
        self._points = [h for h, _ in ring]
        self._owners = [p for _, p in ring]
        self._recent: deque[tuple[float, int]] = deque()
        self._load = [0] * partitions
        self._workers: dict[str, tuple[float, WorkerStatus]] = {}
        self.spilled = 0

    def choose(self, key: str, now: float | None = None) -> int:
        """The partition for one batch of cluster `key`."""
        now = time.monotonic() if now is None else now
        self._expire(now)
        lagging = self._lagging_partitions(now)
        cap = (1 + self.epsilon) * (len(self._recent) + 1) / self.partitions
        start = bisect.bisect(self._points, _hash(key)) % len(self._points)
        home = self._owners[start]
        chosen = None
        for step in range(len(self._points)):
            p = self._owners[(start + step) % len(self._points)]
            if p not in lagging and self._load[p] + 1 <= max(cap, 1):
                chosen = p
                break
        if chosen is None:  # everything is full or lagging: least-loaded partition
            chosen = min(range(self.partitions), key=lambda q: (q in lagging, self._load[q]))
        if chosen != home:
            self.spilled += 1
        self._recent.append((now, chosen))
        self._load[chosen] += 1
        return chosen

    def update(self, status: WorkerStatus, now: float | None = None) -> None:
        """Record a worker's latest status."""
        self._workers[status.node_id] = (time.monotonic() if now is None else now, status)

    def loads(self) -> list[int]:
        return list(self._load)

    def _expire(self, now: float) -> None:
        while self._recent and now - self._recent[0][0] > self.window_s:
            _, p = self._recent.popleft()
            self._load[p] -= 1

    def _lagging_partitions(self, now: float) -> set[int]:
        """Partitions of workers whose queue is well above the others' (or who are saturated)."""
        live = [s for t, s in self._workers.values() if now - t <= self.status_ttl_s]
        if len(live) < 2:
            return set()
        mean_queue = sum(s.queue_len for s in live) / len(live)
        lagging: set[int] = set()
        for s in live:
            if (s.queue_len > 2 * mean_queue + 2) or (s.load_ratio > 0.95 and s.queue_len > mean_queue + 2):
                lagging.update(s.partitions)
        if len(lagging) >= self.partitions:  # never mark every partition lagging
            return set()
        return lagging
