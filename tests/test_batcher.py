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
