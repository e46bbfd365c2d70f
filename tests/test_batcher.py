"""The per-key batcher on its own: which trigger closes a buffer, and what it holds."""

from __future__ import annotations

import asyncio

import pytest

from streams.batcher import KeyedBatcher


class Recorder:
    def __init__(self) -> None:
        self.emitted: list[tuple[str, list[int], str]] = []

    async def __call__(self, key: str, items: list[int], trigger: str) -> None:
        self.emitted.append((key, items, trigger))


async def test_count_trigger_caps_batch_at_max_size() -> None:
    rec = Recorder()
    b = KeyedBatcher(rec, window_s=10, max_size=100, max_bytes=10**9)
    for i in range(250):
        await b.add("k", i, 1)
    assert [len(items) for _, items, _ in rec.emitted] == [100, 100]
    assert {t for _, _, t in rec.emitted} == {"count"}
    assert b.buffered == 50


async def test_bytes_trigger_never_exceeds_limit() -> None:
    rec = Recorder()
    b = KeyedBatcher(rec, window_s=10, max_size=100, max_bytes=1000)
    for i in range(10):
        await b.add("k", i, 300)
    sizes = [len(items) for _, items, _ in rec.emitted]
    assert sizes == [3, 3, 3] and all(t == "bytes" for _, _, t in rec.emitted)


async def test_time_trigger_and_keys_stay_apart() -> None:
    rec = Recorder()
    b = KeyedBatcher(rec, window_s=0.05, max_size=100, max_bytes=10**9)
    timer = asyncio.create_task(b.run_timer())
    await b.add("a", 1, 1)
    await b.add("b", 2, 1)
    await b.add("a", 3, 1)
    await asyncio.sleep(0.2)
    timer.cancel()
    assert sorted((k, items, t) for k, items, t in rec.emitted) == [("a", [1, 3], "time"), ("b", [2], "time")]


async def test_flush_all_empties_every_buffer() -> None:
    rec = Recorder()
    b = KeyedBatcher(rec, window_s=10, max_size=100, max_bytes=10**9)
    await b.add("a", 1, 1)
    await b.add("b", 2, 1)
    await b.flush_all()
    assert b.buffered == 0 and len(rec.emitted) == 2


def test_rejects_non_positive_limits() -> None:
    with pytest.raises(ValueError):
        KeyedBatcher(Recorder(), window_s=0, max_size=1, max_bytes=1)


async def test_wait_for_room_blocks_until_a_buffer_is_emitted() -> None:
    rec = Recorder()
    b = KeyedBatcher(rec, window_s=0.05, max_size=100, max_bytes=10**9)
    for i in range(5):
        await b.add(f"k{i}", i, 1)
    waiter = asyncio.create_task(b.wait_for_room(5))
    await asyncio.sleep(0.01)
    assert not waiter.done()  # full: the caller is paused
    timer = asyncio.create_task(b.run_timer())
    await asyncio.wait_for(waiter, timeout=1)
    timer.cancel()
    assert b.buffered < 5


async def test_per_key_limits_from_the_controller() -> None:
    rec = Recorder()
    limits = {"slow": (0.2, 100), "fast": (0.02, 2)}
    b = KeyedBatcher(rec, window_s=0.05, max_size=100, max_bytes=10**9, limits=lambda k: limits[k])
    timer = asyncio.create_task(b.run_timer())
    await b.add("slow", 1, 1)
    for i in range(3):
        await b.add("fast", i, 1)
    await asyncio.sleep(0.1)
    assert [(k, t) for k, _, t in rec.emitted] == [("fast", "count"), ("fast", "time")]
    await asyncio.sleep(0.2)
    timer.cancel()
    assert rec.emitted[-1] == ("slow", [1], "time")


async def test_a_cold_key_skips_the_window_and_a_busy_one_waits() -> None:
    """A key whose recent rate predicts no company within the window is emitted at once; a
    new key (no estimate) and a busy key wait their window as before."""
    rec = Recorder()
    b = KeyedBatcher(rec, window_s=0.05, max_size=100, max_bytes=10**9, min_expected=0.5)
    timer = asyncio.create_task(b.run_timer())
    await b.add("cold", 1, 1)  # no estimate yet: waits
    await asyncio.sleep(0.3)  # the window passes; the next gap is 6 windows
    await b.add("cold", 2, 1)  # predicted 0.05 / 0.3 = 0.17 more within the window: no wait
    assert rec.emitted == [("cold", [1], "time"), ("cold", [2], "time")]
    assert b.skipped_waits == 1 and b.buffered == 0
    for i in range(3):  # a burst: gaps far below the window
        await b.add("busy", 10 + i, 1)
    await b.add("busy", 13, 1)
    await asyncio.sleep(0.2)
    timer.cancel()
    assert rec.emitted[2:] == [("busy", [10, 11, 12, 13], "time")]
    assert b.skipped_waits == 1


async def test_min_expected_zero_always_waits() -> None:
    rec = Recorder()
    b = KeyedBatcher(rec, window_s=0.02, max_size=100, max_bytes=10**9, min_expected=0.0)
    timer = asyncio.create_task(b.run_timer())
    for i in range(2):
        await b.add("k", i, 1)
        await asyncio.sleep(0.15)
    timer.cancel()
    assert rec.emitted == [("k", [0], "time"), ("k", [1], "time")] and b.skipped_waits == 0


def test_arrival_gaps_smooth_and_stay_bounded() -> None:
    from streams.arrivals import ArrivalGaps

    gaps: ArrivalGaps[str] = ArrivalGaps(capacity=2, alpha=0.5)
    gaps.observe("a", 0.0)
    assert gaps.expected_within("a", 0.01) is None  # one arrival: no gap yet
    gaps.observe("a", 1.0)
    assert gaps.expected_within("a", 0.5) == pytest.approx(0.5)  # gap 1 s
    gaps.observe("a", 1.2)  # gap 0.2 s: smoothed 0.6 s
    assert gaps.expected_within("a", 0.6) == pytest.approx(1.0)
    gaps.observe("b", 2.0)
    gaps.observe("c", 3.0)  # over capacity: the least recent key ("a") is forgotten
    assert len(gaps) == 2 and gaps.expected_within("a", 1.0) is None
