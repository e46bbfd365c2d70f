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
    r.update(
        WorkerStatus(node_id="w1", partitions=[0, 1, 2], load_ratio=1.0, avg_service_ms=900, queue_len=50, ts=0), now=0
    )
    r.update(
        WorkerStatus(node_id="w2", partitions=[3, 4, 5], load_ratio=0.2, avg_service_ms=50, queue_len=0, ts=0), now=0
    )
    chosen = {r.choose(f"svc/u{i}", now=0.1) for i in range(60)}
    assert chosen <= {3, 4, 5}


def _status(node: str, partitions: list[int], queue: int = 0) -> WorkerStatus:
    return WorkerStatus(node_id=node, partitions=partitions, load_ratio=0.3, avg_service_ms=20, queue_len=queue, ts=0)


def test_batches_go_to_one_home_partition_per_worker() -> None:
    r = BoundedLoadRouter(partitions=6)
    assert r.targets(now=0) == frozenset(range(6))  # no status yet: every partition
    r.update(_status("w1", [0, 1, 2, 3, 4, 5]), now=0)
    assert {r.choose(f"svc/u{i}", now=0.1) for i in range(60)} == {0}
    r2 = BoundedLoadRouter(partitions=6)
    r2.update(_status("w1", [2, 4]), now=0)
    r2.update(_status("w2", [1, 3, 5]), now=0)
    assert r2.targets(now=0) == frozenset({1, 2})
    assert {r2.choose(f"svc/u{i}", now=0.1) for i in range(60)} == {1, 2}


def test_a_worker_joining_moves_only_the_keys_it_takes() -> None:
    keys = [f"svc/u{i}" for i in range(200)]
    r = BoundedLoadRouter(partitions=6, epsilon=10.0)  # loose bound: placement by the ring alone
    r.update(_status("w1", [0, 1, 2]), now=0)
    r.update(_status("w2", [3, 4, 5]), now=0)
    before = {k: r.choose(k, now=0.1) for k in keys}
    r.update(_status("w3", [4, 5]), now=0.2)
    r.update(_status("w2", [3]), now=0.2)
    after = {k: r.choose(k, now=0.3) for k in keys}
    moved = {k for k in keys if before[k] != after[k]}
    assert moved and all(after[k] == 4 for k in moved)  # only to the new worker's home


def test_a_silent_worker_stops_being_a_target() -> None:
    r = BoundedLoadRouter(partitions=6, status_ttl_s=10.0)
    r.update(_status("w1", [0, 1, 2]), now=0)
    r.update(_status("w2", [3, 4, 5]), now=5)
    assert r.targets(now=12) == frozenset({3})


def test_load_is_counted_in_questions() -> None:
    r = BoundedLoadRouter(partitions=6, epsilon=0.25)
    r.update(_status("w1", [0, 1, 2]), now=0)
    r.update(_status("w2", [3, 4, 5]), now=0)
    for i in range(200):  # one user's full batches, everyone else's singletons
        r.choose("svc/heavy", now=0.001 * i, weight=10)
        r.choose(f"svc/u{i}", now=0.001 * i + 0.0005)
    loads = r.loads()
    assert loads[0] + loads[3] == 200 * 11
    assert max(loads[0], loads[3]) <= 1.25 * (200 * 11) / 2 + 10
