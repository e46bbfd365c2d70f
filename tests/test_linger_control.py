"""The worker's adaptive linger (workers.linger_control): it learns, per load level, the
window whose answers come back fastest, and keeps what it learnt when the load returns."""

from __future__ import annotations

import pytest

from workers.linger_control import LingerController, bucket_floor, bucket_of

TARGET = 200.0


def _run(ctl: LingerController, t: float, rate: float, latency_of, epochs: int) -> float:
    """Feed `epochs` one-second epochs at `rate` whose answers take latency_of(window_ms)."""
    for _ in range(epochs):
        ctl.observe([latency_of(ctl.windows_ms[ctl.arm])] * 50)
        t += 1.0
        ctl.tick(t, rate)
    return t


def test_load_buckets_double() -> None:
    assert [bucket_of(r) for r in (0, 24.9, 25, 49, 50, 99, 100, 800)] == [0, 0, 1, 1, 2, 2, 3, 6]
    assert [bucket_floor(b) for b in (0, 1, 2, 6)] == [0.0, 25.0, 50.0, 800.0]


def test_it_learns_a_window_per_load_and_switches_with_the_load() -> None:
    ctl = LingerController(TARGET, epsilon=0.0)
    ctl.tick(0.0, 100.0)
    low = lambda w: 30 + w  # noqa: E731 - at low load every ms of waiting is latency
    high = lambda w: 120 - w  # noqa: E731 - at high load waiting saves CPU, and latency with it
    t = _run(ctl, 0.0, 100.0, low, 8)
    assert ctl.window_s == 0.0
    t = _run(ctl, t, 800.0, high, 8)
    assert ctl.window_s == pytest.approx(0.05)
    assert ctl.snapshot()["best_ms"] == {100.0: 0.0, 800.0: 50.0}
    _run(ctl, t, 100.0, low, 1)  # back at the low load: its window at once, no new exploring
    assert ctl.window_s == 0.0


def test_over_target_answers_weigh_more_than_a_lower_mean() -> None:
    ctl = LingerController(TARGET)
    assert ctl.reward([100.0] * 100) > ctl.reward([50.0] * 95 + [400.0] * 5)


def test_too_few_answers_or_a_changing_load_teach_nothing() -> None:
    ctl = LingerController(TARGET, min_answers=20)
    ctl.tick(0.0, 100.0)
    ctl.observe([10.0] * 5)
    ctl.tick(1.0, 100.0)
    ctl.observe([10.0] * 50)
    ctl.tick(2.0, 800.0)  # the load moved during the epoch
    assert ctl.buckets[bucket_of(100.0)].q == {} and ctl.buckets[bucket_of(800.0)].q == {}


def test_bad_target_says_what_to_set() -> None:
    with pytest.raises(ValueError, match="AUTOGLM_LATENCY_TARGET_P99_MS"):
        LingerController(0.0)


def test_a_rate_at_a_bucket_edge_does_not_flap() -> None:
    ctl = LingerController(TARGET, epsilon=0.0)
    ctl.tick(0.0, 790.0)
    start = ctl.bucket
    for i, rate in enumerate((810.0, 780.0, 830.0, 700.0)):
        ctl.observe([50.0] * 50)
        ctl.tick(1.0 + i, rate)
        assert ctl.bucket == start
    ctl.tick(9.0, 1000.0)  # well into the next bucket
    assert ctl.bucket == start + 1


def test_a_new_load_starts_from_the_nearest_learnt_window_never_waiting_less_for_more_load() -> None:
    ctl = LingerController(TARGET, epsilon=0.0, start_ms=50.0)
    ctl.tick(0.0, 400.0)
    assert ctl.window_s == pytest.approx(0.05)  # nothing learnt: the configured window
    t = _run(ctl, 0.0, 400.0, lambda w: 30 + w, 6)
    assert ctl.window_s == 0.0
    t = _run(ctl, t, 100.0, lambda w: 30 + w, 1)
    assert ctl.window_s == 0.0  # less load, new: it starts where 400 q/s ended
    _run(ctl, t, 1600.0, lambda w: 30 + w, 1)
    assert ctl.window_s == pytest.approx(0.05)  # more load, new: not below the configured window


def test_shorter_windows_are_tried_only_with_latency_to_spare() -> None:
    ctl = LingerController(TARGET, epsilon=0.0, start_ms=50.0)
    ctl.tick(0.0, 800.0)
    _run(ctl, 0.0, 800.0, lambda w: 160 - w, 6)  # p99 over half the target: shorter is never tried
    assert set(ctl.buckets[bucket_of(800.0)].q) == {3}
    assert ctl.window_s == pytest.approx(0.05)


def test_below_the_lowest_bucket_nothing_waits() -> None:
    ctl = LingerController(TARGET, start_ms=50.0)
    ctl.tick(0.0, 5.0)
    assert ctl.window_s == 0.0 and ctl.snapshot()["window_ms"] == 0.0
    _run(ctl, 0.0, 5.0, lambda w: 30 + w, 3)
    assert ctl.window_s == 0.0 and ctl.buckets[0].q == {}
    ctl.tick(10.0, 100.0)
    assert ctl.window_s == pytest.approx(0.05)  # busy: the configured window to start from
