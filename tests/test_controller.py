"""The batching controller moves to the arm that holds the latency target."""

from __future__ import annotations

from streams.controller import HISTORY, BatchController


def simulate(controller: BatchController, latency_of, epochs: int, service: str = "s") -> None:  # noqa: ANN001
    now = controller.epoch_started or 0.0  # continue the clock across calls
    controller.tick(now)
    for _ in range(epochs):
        window, size = controller.limits(service)
        for _ in range(50):
            controller.observe(service, latency_of(window, size))
        now += controller.epoch_s
        controller.tick(now)


def met_share(c: BatchController, latency_of, last: int) -> float:  # noqa: ANN001
    """Share of the last `last` epochs whose arm met the target."""
    recent = list(c.services["s"].history)[-last:]
    return sum(1 for _, arm, _ in recent if latency_of(*c.arms[arm]) <= c.p99_target_ms) / len(recent)


def test_converges_to_an_arm_that_meets_the_target() -> None:
    # A made-up service: latency grows with the window; small sizes overload (queueing).
    def latency(window: float, size: int) -> float:
        return window * 1000 * 2 + (400 if size < 50 else 20)

    c = BatchController(p99_target_ms=150, seed=1, start=(0.1, 10))
    simulate(c, latency, epochs=60)
    assert met_share(c, latency, last=30) >= 0.8


def test_follows_a_load_step() -> None:
    load = {"high": False}

    def latency(window: float, size: int) -> float:
        if load["high"]:  # under high load small batches cannot keep up
            return 30 + window * 1000 + (1000 if size < 100 else 0)
        return 10 + window * 1000 * 3

    c = BatchController(p99_target_ms=150, seed=2)
    simulate(c, latency, epochs=30)
    load["high"] = True
    simulate(c, latency, epochs=60)
    assert met_share(c, latency, last=30) >= 0.8


def test_prefers_the_shortest_window_when_waiting_buys_nothing() -> None:
    # Every arm holds the target; a longer window only makes each question wait it out
    # (a cluster rarely sees company within a window), so the fastest arm must win.
    def latency(window: float, size: int) -> float:
        return 30 + window * 1000

    shares = []
    for seed in range(6):  # exploration is random: judge the typical run, not one seed
        c = BatchController(p99_target_ms=200, seed=seed, start=(0.05, 50))
        simulate(c, latency, epochs=80)
        recent = [c.arms[arm][0] for _, arm, _ in list(c.services["s"].history)[-30:]]
        shares.append(sum(1 for w in recent if w <= 0.01) / len(recent))
    assert sum(shares) / len(shares) >= 0.6, shares


def test_explores_no_longer_window_without_latency_to_spare() -> None:
    # p99 above half the target at every arm: a longer window than the start's must not be tried.
    def latency(window: float, size: int) -> float:
        return 120 + window * 1000

    c = BatchController(p99_target_ms=200, seed=4, start=(0.01, 50))
    simulate(c, latency, epochs=60)
    assert max(c.arms[arm][0] for _, arm, _ in c.services["s"].history) <= 0.01


def test_history_stays_bounded() -> None:
    """A stream processor runs for weeks: the per-service history keeps the last HISTORY epochs."""
    c = BatchController(p99_target_ms=200, seed=2)
    simulate(c, lambda window, size: 50.0, epochs=HISTORY + 25)
    history = c.services["s"].history
    assert len(history) == HISTORY
    assert history[-1][0] == c.epoch_started  # the newest epoch is kept, the oldest dropped
