"""Load-aware routing of batches to `batches` partitions.

Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam, 2018): each
partition owns several points on a hash ring; a cluster key goes to the first partition
clockwise from its hash whose load is below (1 + epsilon) x the mean load, so a user's
batches stay on one partition while it is not overloaded, and no partition takes more
than its bounded share. Load is the number of questions routed in a sliding window.

Workers publish their status (schemas.worker_status). Once the router knows them, the ring
holds one partition per live worker (its lowest, its "home"): batches are routed to
workers, and a worker receives them on one partition. Why: a worker commits each source
partition of a delivery in its own Kafka transaction (workers.delivery, fencing needs a
transactional id per partition), and a transaction costs 5-9 ms of CPU between broker and
client on this machine (measured); with batches spread over all 6 partitions one worker
paid 6 per delivery and reached a quarter of the throughput it reaches without them.
Until statuses arrive (start-up) the ring holds every partition. A home's points are the
same in every ring, so a worker joining or leaving moves only the keys it takes or gives.

Workers that lag (queue or load ratio well above the others') count as full, so batches
spill to the homes of less-loaded workers until they catch up.
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

    def __init__(
        self, partitions: int, epsilon: float = 0.25, window_s: float = 5.0, status_ttl_s: float = 10.0
    ) -> None:
        self.partitions = partitions
        self.epsilon = epsilon
        self.window_s = window_s
        self.status_ttl_s = status_ttl_s
        self._full_ring = sorted(
            (_hash(f"p{p}#{i}"), p) for p in range(partitions) for i in range(POINTS_PER_PARTITION)
        )
        self._rings: dict[frozenset[int], tuple[list[int], list[int]]] = {}
        self._recent: deque[tuple[float, int, int]] = deque()  # (time, partition, questions)
        self._total = 0  # questions routed within the window
        self._load = [0] * partitions
        self._workers: dict[str, tuple[float, WorkerStatus]] = {}
        self.spilled = 0

    def choose(self, key: str, now: float | None = None, weight: int = 1) -> int:
        """The partition for one batch of cluster `key` carrying `weight` questions.

        Load is counted in questions, not batches: a heavy user's batches are the fuller
        ones (measured in the skew experiment: with batch counts balanced within the bound,
        one worker still answered 2.3x the questions of the other)."""
        now = time.monotonic() if now is None else now
        self._expire(now)
        targets = self.targets(now)
        points, owners = self._ring(targets)
        lagging = self._lagging_partitions(now) & targets
        if lagging == targets:  # never mark every target lagging
            lagging = set()
        cap = (1 + self.epsilon) * (self._total + weight) / len(targets)
        start = bisect.bisect(points, _hash(key)) % len(points)
        home = owners[start]
        chosen = None
        for step in range(len(points)):
            p = owners[(start + step) % len(points)]
            if p not in lagging and self._load[p] + weight <= max(cap, weight):
                chosen = p
                break
        if chosen is None:  # everything is full or lagging: least-loaded target
            chosen = min(targets, key=lambda q: (q in lagging, self._load[q]))
        if chosen != home:
            self.spilled += 1
        self._recent.append((now, chosen, weight))
        self._load[chosen] += weight
        self._total += weight
        return chosen

    def update(self, status: WorkerStatus, now: float | None = None) -> None:
        """Record a worker's latest status."""
        self._workers[status.node_id] = (time.monotonic() if now is None else now, status)

    def targets(self, now: float | None = None) -> frozenset[int]:
        """The partitions batches go to: each live worker's home, or all before any status."""
        now = time.monotonic() if now is None else now
        homes = frozenset(
            min(p for p in s.partitions if p < self.partitions)
            for t, s in self._workers.values()
            if now - t <= self.status_ttl_s and any(p < self.partitions for p in s.partitions)
        )
        return homes or frozenset(range(self.partitions))

    def _ring(self, targets: frozenset[int]) -> tuple[list[int], list[int]]:
        ring = self._rings.get(targets)
        if ring is None:
            if len(self._rings) > 64:  # worker sets come and go; keep the memo small
                self._rings.clear()
            kept = [(h, p) for h, p in self._full_ring if p in targets]
            ring = self._rings[targets] = ([h for h, _ in kept], [p for _, p in kept])
        return ring

    def loads(self) -> list[int]:
        return list(self._load)

    def _expire(self, now: float) -> None:
        while self._recent and now - self._recent[0][0] > self.window_s:
            _, p, weight = self._recent.popleft()
            self._load[p] -= weight
            self._total -= weight

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
        return lagging
