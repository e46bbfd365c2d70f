"""Adaptive batching: an online bandit per service over (batch window, maximum size).

Each service has its own arm values, learnt from the latencies of its answers:

* every `epoch_s` the controller scores the arm that was in force for that service:
  reward = 0.5 * SLO attainment (share of answers with total latency <= the p99 target)
           + 0.5 * min(1, target / observed p99)   (a slope even when nothing attains)
           + 0.1 * throughput / best throughput seen (so, among arms that hold the
           SLO, the one that moves more wins);
* Q(arm) <- Q(arm) + alpha * (reward - Q(arm)): a recency-weighted average, because the
  best arm moves when the load moves (a load step must be followed, not averaged away);
* the next arm is the best arm or, while the last epoch missed the target, an untried
  neighbour of it (optimism in the face of uncertainty), or with probability epsilon a
  random neighbour (to notice change); while the target holds, untried arms are worth no
  more than the best, so the controller stays put instead of touring 20 arms (a 2-s
  epoch per arm per service is longer than a load phase lasts);
  exploring only adjacent windows/sizes keeps exploration cheap in latency;
* a longer window is explored only while the last epoch's p99 was within half the
  target: a (service, user) cluster rarely sees company within a window, so a longer
  window mostly makes every question of the service wait it out, and near capacity
  that showed as 2-s bursts of p99 over the SLO (the controller experiment's step).

Inputs come from the `answers` topic (total latency per answer, from the question's `ts`
to the answer's production: `schemas.answer.Latency`), so the controller needs no
cooperation from the workers. Arms never exceed the configured maximum batch size.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

WINDOWS_S: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1)
SIZES: tuple[int, ...] = (10, 25, 50, 100)
OPTIMISTIC = 2.0  # above any reward (at most 1.1): untried neighbours get tried first
LATENCY_WEIGHT = 0.2  # reward per unit of mean latency / target
HEADROOM = 0.5  # a longer window is explored only when the last p99 <= this x target
HISTORY = 1800  # epochs kept per service for inspection (an hour of 2-s epochs); older ones are dropped


@dataclass
class ServiceState:
    """What the controller knows about one service."""

    arm: int
    q: dict[int, float] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    history: deque[tuple[float, int, float]] = field(
        default_factory=lambda: deque(maxlen=HISTORY)
    )  # (time, arm, reward)
    last_p99_ms: float = 0.0


class BatchController:
    """Chooses (window_s, max_size) per service to hold a p99 target at the most throughput."""

    def __init__(
        self,
        p99_target_ms: float,
        epoch_s: float = 2.0,
        epsilon: float = 0.15,
        alpha: float = 0.4,
        start: tuple[float, int] = (0.05, 100),
        seed: int = 0,
    ) -> None:
        self.arms = [(w, s) for w in WINDOWS_S for s in SIZES]
        self.p99_target_ms = p99_target_ms
        self.epoch_s = epoch_s
        self.epsilon = epsilon
        self.alpha = alpha
        self.start_arm = min(
            range(len(self.arms)),
            key=lambda i: abs(self.arms[i][0] - start[0]) + abs(self.arms[i][1] - start[1]) / 1000,
        )
        self.rng = random.Random(seed)
        self.services: dict[str, ServiceState] = {}
        self.best_throughput = 1e-9
        self.epoch_started: float | None = None

    def limits(self, service: str) -> tuple[float, int]:
        """The (window_s, max_size) in force for `service` now."""
        return self.arms[self._state(service).arm]

    def observe(self, service: str, total_ms: float) -> None:
        """One answered question of `service` and its end-to-end latency."""
        self._state(service).latencies_ms.append(total_ms)

    def tick(self, now: float) -> None:
        """Close an epoch when due: score each service's arm and pick the next one."""
        if self.epoch_started is None:
            self.epoch_started = now
            return
        if now - self.epoch_started < self.epoch_s:
            return
        elapsed = now - self.epoch_started
        self.epoch_started = now
        for state in self.services.values():
            if not state.latencies_ms:
                continue
            state.last_p99_ms = _p99(state.latencies_ms)
            reward = self._reward(state.latencies_ms, state.last_p99_ms, elapsed)
            old = state.q.get(state.arm, reward)
            state.q[state.arm] = old + self.alpha * (reward - old)
            state.history.append((now, state.arm, reward))
            state.latencies_ms.clear()
            state.arm = self._next_arm(state)

    def _reward(self, latencies_ms: list[float], p99_ms: float, elapsed_s: float) -> float:
        attained = sum(1 for x in latencies_ms if x <= self.p99_target_ms) / len(latencies_ms)
        closeness = min(1.0, self.p99_target_ms / max(p99_ms, 1e-6))  # a slope when nothing attains
        throughput = len(latencies_ms) / elapsed_s
        self.best_throughput = max(self.best_throughput, throughput)
        mean = sum(latencies_ms) / len(latencies_ms)
        return (
            0.5 * attained
            + 0.5 * closeness
            + 0.1 * throughput / self.best_throughput
            - LATENCY_WEIGHT * mean / self.p99_target_ms
        )

    def _next_arm(self, state: ServiceState) -> int:
        """Hill-climb: the best arm or, while the target is missed, an untried neighbour of
        it (untried arms then look better than any score), and now and then a random
        neighbour; longer windows only with latency to spare."""
        top = max(state.q.values())
        best = self.rng.choice([a for a, v in state.q.items() if v >= top - 1e-3])  # wander plateaus
        longer = state.last_p99_ms <= HEADROOM * self.p99_target_ms
        neighbours = self._neighbours(best, longer)
        if neighbours and self.rng.random() < self.epsilon:
            return self.rng.choice(neighbours)
        untried = OPTIMISTIC if state.last_p99_ms > self.p99_target_ms else top  # satisfice while it holds
        return max([best, *neighbours], key=lambda a: state.q.get(a, untried))  # a tie keeps `best`

    def _neighbours(self, arm: int, longer: bool = True) -> list[int]:
        """Arms one step away in window or size (a longer window only when `longer`)."""
        w, s = self.arms[arm]
        wi, si = WINDOWS_S.index(w), SIZES.index(s)
        out = []
        for dw, ds in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            if dw > 0 and not longer:
                continue
            if 0 <= wi + dw < len(WINDOWS_S) and 0 <= si + ds < len(SIZES):
                out.append(self.arms.index((WINDOWS_S[wi + dw], SIZES[si + ds])))
        return out

    def _state(self, service: str) -> ServiceState:
        state = self.services.get(service)
        if state is None:
            state = self.services[service] = ServiceState(arm=self.start_arm)
        return state

    def snapshot(self) -> dict[str, dict]:
        """Current arm and its value per service (for metrics and the benchmark)."""
        return {
            name: {"window_ms": self.arms[st.arm][0] * 1000, "max_size": self.arms[st.arm][1], "q": st.q.get(st.arm)}
            for name, st in self.services.items()
        }


def _p99(latencies_ms: list[float]) -> float:
    return sorted(latencies_ms)[int(0.99 * (len(latencies_ms) - 1))]
