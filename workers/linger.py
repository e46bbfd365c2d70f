"""How long a worker waits after a poll for more questions before it calls the reasoner.

Why: a reasoner call has a large fixed cost (measured on this 2-core CPU, warm caches: 7 ms
for 1 question, 7 ms for 8, 12 ms for 16, 25 ms for 64), and at the rates this machine
serves a poll brings 1-3 questions: the reasoner then spends ~5 ms of CPU per question
that the broker and the stream processor, on the same cores, need too, and every poll
costs a delivery (a PostgreSQL statement and Kafka transactions). Waiting up to
`AUTOGLM_WORKER_LINGER_MS` (50) for the next polls' questions is NVIDIA Triton's
`max_queue_delay` applied to the worker. Measured side by side at 60 q/s on the whole
pipeline: 2.4 -> 11 questions per call, reasoner 4.9 -> 1.1 ms per question, and the
worker, its reasoner process and the broker together 116 % -> 69 % of a core, with p50
99-100 -> 103-104 ms (the wait is paid back by less contention) and p99 186-292 -> 156-166 ms.

Waiting pays only when the worker is busy: below `min_rate` questions per second (counted
over the last `span_s`) a call's fixed cost is a small share of a core and a wait would only
add latency, so nothing waits; above it, the worker waits until `target` questions are in
hand or `window_s` has passed since the first poll, whichever comes first. At high load the
reasoner is busy and polls fill by themselves anyway. By default the worker's adaptive
linger (`workers.linger_control`) sets `window_s` per load level and the `min_rate` gate
is off.
"""

from __future__ import annotations

from collections import deque


class Linger:
    """The worker's recent question rate and the decision to wait for more."""

    def __init__(self, window_s: float, target: int, min_rate: float = 40.0, span_s: float = 1.0) -> None:
        if window_s < 0 or target < 1 or min_rate < 0 or span_s <= 0:
            raise ValueError(
                "worker linger: set AUTOGLM_WORKER_LINGER_MS >= 0 (0 turns it off), AUTOGLM_WORKER_LINGER_QUESTIONS >= 1 "
                "and AUTOGLM_WORKER_LINGER_MIN_QPS >= 0"
            )
        self.window_s = window_s
        self.target = target
        self.min_rate = min_rate
        self.span_s = span_s
        self._polls: deque[tuple[float, int]] = deque()  # (time, questions) of recent polls
        self._count = 0

    def rate(self, now: float) -> float:
        """Questions per second received over the last `span_s`."""
        while self._polls and self._polls[0][0] <= now - self.span_s:
            self._count -= self._polls.popleft()[1]
        return self._count / self.span_s

    def observe(self, questions: int, now: float) -> None:
        """`questions` arrived in a poll at `now` (monotonic seconds)."""
        if questions:
            self._polls.append((now, questions))
            self._count += questions

    def wait_s(self, in_hand: int, first_poll: float, now: float) -> float:
        """Seconds to wait for more questions (0: call the reasoner now)."""
        if self.window_s <= 0 or in_hand >= self.target or self.rate(now) < self.min_rate:
            return 0.0
        return max(0.0, first_poll + self.window_s - now)
