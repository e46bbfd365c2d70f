"""Bounded-load consistent hashing: keys stay home, no partition exceeds its bound, and
lagging workers' partitions are avoided."""

from __future__ import annotations

from schemas.worker_status import WorkerStatus
from streams.routing import BoundedLoadRouter


def test_a_key_stays_on_its_partition_under_light_load() -> None:
    r = BoundedLoadRouter(partitions=6)
    keys = [f"svc/u{i}" for i in range(30)]
    first = {k: r.choose(k, now=0.0) for k in keys}
    r2 = BoundedLoadRouter(partitions=6)
    assert {k: r2.choose(k, now=0.0) for k in keys} == first  # deterministic placement


def test_a_heavy_key_is_bounded_and_spills() -> None:
    r = BoundedLoadRouter(partitions=6, epsilon=0.25)
    for i in range(600):
        r.choose("svc/heavy" if i % 2 == 0 else f"svc/u{i}", now=i * 0.001)
    mean = sum(r.loads()) / 6
    assert max(r.loads()) <= (1 + 0.25) * mean + 1
    assert r.spilled > 0


def test_lagging_worker_partitions_are_avoided() -> None:
    r = BoundedLoadRouter(partitions=6)
    r.update(WorkerStatus(node_id="w1", partitions=[0, 1, 2], load_ratio=1.0, avg_service_ms=900, queue_len=50, ts=0), now=0)
    r.update(WorkerStatus(node_id="w2", partitions=[3, 4, 5], load_ratio=0.2, avg_service_ms=50, queue_len=0, ts=0), now=0)
    chosen = {r.choose(f"svc/u{i}", now=0.1) for i in range(60)}
    assert chosen <= {3, 4, 5}
