"""Adaptive batching in the worker: a contextual bandit that picks the linger window by load.

Why: the best linger window (`workers.linger`) depends on the load and on the machine.
Measured side by side on the whole pipeline (fixed rates, 8-s steps, 2 rounds, linger 50
vs 0 ms): at 100-200 q/s waiting doubled the median (p50 55-61 vs 28-36 ms), at 800 q/s
not waiting raised p99 (71-79 vs 109-164 ms) and the worker's CPU (57 vs 70 % of a core);
on a slower machine waiting already paid at 45-60 q/s. No fixed window is best for a load
that moves, so the worker learns one per load level from its own answers' latencies.

* context: the questions per second this worker received in the last second, in doubling
  buckets (below 25, 25-50, 50-100, ...); below 25 q/s nothing waits;
* arms: linger windows in ms (0 never waits); the question target stays
  `AUTOGLM_WORKER_LINGER_QUESTIONS`;
* every `epoch_s` the arm in force is scored on the latencies (question produced ->
  answer committed) of the answers delivered in that epoch:
      reward = -(mean latency / target) - 10 x (share of answers over the target - 1 %, if > 0)
  i.e. hold the p99 target first, then be fast; CPU saved by waiting shows up as lower
  latency once the machine is busy, which is when waiting pays;
  (an epoch with too few answers, or whose load moved to another bucket, is not scored);
* Q[bucket][arm] <- Q + alpha * (reward - Q) (recency-weighted, so a drifting best arm is
  followed); the next arm is the best one or an untried neighbour of it (hill-climbing with
  optimism, as streams.controller does), or with probability `epsilon` a neighbour (to
  notice change). Only neighbours are explored because a bad window costs latency while
  it is tried: never waiting at high load lets a queue build.
Exploring is kept safe: a shorter window is tried only while the last epoch's p99 was
within half the target (near capacity, waiting less costs CPU per question and builds a
queue that later epochs pay for: measured, without this rule the bandit lost to the fixed
50-ms linger on a 377/1,508 q/s mixed load, p99 186-316 vs 114-131 ms). A bucket seen for
the first time starts from the best window of the nearest bucket already learnt (when that
bucket had less load, no shorter than the configured window; the configured window when
none is learnt), so a load step starts near the answer; a load that comes back is served
by what its bucket learnt, at once. The bucket changes only when the rate leaves the
current one by more than `HYSTERESIS`, so a load near a bucket's edge does not flap.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

WINDOWS_MS: tuple[float, ...] = (0.0, 10.0, 25.0, 50.0)
LOWEST_BUCKET_QPS = 25.0
HYSTERESIS = 0.2  # a rate must leave its bucket by 20 % to change bucket
OPTIMISTIC = 1.0  # above any reward (at most 0): an untried neighbour is tried before the best is kept


@dataclass
class Bucket:
    """What the controller learnt at one load level."""

    q: dict[int, float] = field(default_factory=dict)  # arm -> value


class LingerController:
    """Chooses the worker's linger window for its current load."""

    def __init__(
        self,
        target_ms: float,
        windows_ms: tuple[float, ...] = WINDOWS_MS,
        start_ms: float = 50.0,
        epoch_s: float = 1.0,
        alpha: float = 0.5,
        epsilon: float = 0.1,
        min_answers: int = 20,
        seed: int = 0,
    ) -> None:
        if target_ms <= 0 or not windows_ms or min(windows_ms) < 0 or epoch_s <= 0:
            raise ValueError("adaptive linger: set AUTOGLM_LATENCY_TARGET_P99_MS > 0 and non-negative windows")
        self.target_ms = target_ms
        self.windows_ms = tuple(sorted(windows_ms))
        self.epoch_s = epoch_s
        self.alpha = alpha
        self.epsilon = epsilon
        self.min_answers = min_answers
        self.rng = random.Random(seed)
        self.buckets: dict[int, Bucket] = {}
        self.start_arm = min(range(len(self.windows_ms)), key=lambda a: abs(self.windows_ms[a] - start_ms))
        self.arm = self.start_arm
        self.headroom = False  # the last scored epoch's p99 was within half the target
        self.bucket = 0
        self._latencies: list[float] = []
        self._epoch_started: float | None = None

    @property
    def window_s(self) -> float:
        """The linger window in force now: none below `LOWEST_BUCKET_QPS`, where a call's fixed
        cost is a small share of a core and an epoch holds too few answers to learn from."""
        return 0.0 if self.bucket == 0 else self.windows_ms[self.arm] / 1000

    def observe(self, latencies_ms: list[float]) -> None:
        """Latencies of answers just committed (question produced -> answer committed)."""
        self._latencies.extend(latencies_ms)

    def tick(self, now: float, rate_qps: float) -> None:
        """Close the epoch when due: score the arm in force, pick one for the current load."""
        if self._epoch_started is None:
            self._epoch_started = now
            self.bucket = bucket_of(rate_qps)
            self.arm = self._choose(self.bucket)
            return
        if now - self._epoch_started < self.epoch_s:
            return
        self._epoch_started = now
        bucket = self._next_bucket(rate_qps)
        # too few answers say nothing; an epoch whose load changed bucket mixes two loads
        if len(self._latencies) >= self.min_answers and bucket == self.bucket and bucket > 0:
            ordered = sorted(self._latencies)
            self.headroom = ordered[int(0.99 * (len(ordered) - 1))] <= self.target_ms / 2
            reward = self.reward(self._latencies)
            learnt = self.buckets.setdefault(self.bucket, Bucket())
            old = learnt.q.get(self.arm, reward)
            learnt.q[self.arm] = old + self.alpha * (reward - old)
        self._latencies.clear()
        self.bucket = bucket
        self.arm = self._choose(bucket)

    def reward(self, latencies_ms: list[float]) -> float:
        over = sum(1 for x in latencies_ms if x > self.target_ms) / len(latencies_ms)
        missed = max(0.0, over - 0.01)  # a p99 target allows 1 % over it
        return -(sum(latencies_ms) / len(latencies_ms)) / self.target_ms - 10.0 * missed

    def _next_bucket(self, rate_qps: float) -> int:
        """The current bucket while the rate stays within it give or take `HYSTERESIS`."""
        low = bucket_floor(self.bucket) / (1 + HYSTERESIS)
        high = bucket_floor(self.bucket + 1) * (1 + HYSTERESIS)
        return self.bucket if low <= rate_qps < high else bucket_of(rate_qps)

    def _choose(self, bucket: int) -> int:
        learnt = self.buckets.setdefault(bucket, Bucket())
        if not learnt.q:
            near = [b for b, v in self.buckets.items() if v.q]
            if not near:
                return self.start_arm
            closest = min(near, key=lambda b: abs(b - bucket))
            prior = _best(self.buckets[closest])
            return max(prior, self.start_arm) if closest < bucket else prior  # more load: not less waiting
        best = _best(learnt)
        # a shorter window is tried only with latency to spare: near capacity, waiting less
        # costs CPU per question and lets a queue build that later epochs pay for
        shorter = [best - 1] if best > 0 and self.headroom else []
        around = [a for a in (*shorter, best + 1) if 0 <= a < len(self.windows_ms)]
        if around and self.rng.random() < self.epsilon:
            return self.rng.choice(around)
        return max([best, *around], key=lambda a: (learnt.q.get(a, OPTIMISTIC), a == best))

    def snapshot(self) -> dict:
        """The window in force and what each load bucket prefers (for status and the benchmark)."""
        return {
            "window_ms": self.window_s * 1000,
            "bucket_qps": bucket_floor(self.bucket),
            "best_ms": {bucket_floor(b): self.windows_ms[_best(v)] for b, v in sorted(self.buckets.items()) if v.q},
        }


def _best(learnt: Bucket) -> int:
    """The arm with the highest value (the shorter window on a tie)."""
    return max(learnt.q, key=lambda a: (learnt.q[a], -a))


def bucket_of(rate_qps: float) -> int:
    """0 below 25 q/s, then one bucket per doubling (25-50 -> 1, 50-100 -> 2, ...)."""
    if rate_qps < LOWEST_BUCKET_QPS:
        return 0
    return 1 + int(math.log2(rate_qps / LOWEST_BUCKET_QPS))


def bucket_floor(bucket: int) -> float:
    """The lowest rate (q/s) of a bucket."""
    return 0.0 if bucket == 0 else LOWEST_BUCKET_QPS * 2 ** (bucket - 1)
