"""Every reasoner call of a benchmark worker, logged as one JSON line.

The answers a worker sends cannot show how it split its work: all chunks of one poll
share the poll's inference time. So the experiments wrap the worker's reasoner in a
`CallRecorder` (enabled by `AUTOGLM_BENCH_CALL_LOG`, see harness.bench.serve) that writes
one line per `answer_batch` call (questions, milliseconds, summed estimated cost, and the
milliseconds per stage when the reasoner keeps `timings`, as the GNN reasoner does) and one
per `estimate_costs` call (the per-question costs and milliseconds). It offers
`estimate_costs` only when the wrapped reasoner does, so the worker's detection of
cost-aware splitting is unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import orjson

from reasoning.reasoner import Reasoned, Reasoner
from schemas.question import Question


class CallRecorder:
    """A reasoner that answers through `inner` and logs each call to `path`."""

    def __init__(self, inner: Reasoner, path: Path) -> None:
        self.inner = inner
        self.name = inner.name
        self.version = inner.version
        self._file = open(path, "ab", buffering=0)  # noqa: SIM115 - lives as long as the worker
        self._costs: dict[str, float] = {}  # question id -> cost, from the last estimate
        if callable(getattr(inner, "estimate_costs", None)):
            self.estimate_costs = self._estimate_costs  # only then: the worker looks this name up
        self._write(
            {
                "kind": "start",
                "estimate_costs": hasattr(self, "estimate_costs"),
                "cache_stats": callable(getattr(inner, "cache_stats", None)),
            }
        )

    def answer_batch(self, questions: Sequence[Question]) -> list[Reasoned]:
        before = self._timings()
        started = time.perf_counter()
        results = self.inner.answer_batch(questions)
        ms = 1000 * (time.perf_counter() - started)
        cost = sum(self._costs.get(str(q.question_id), 0.0) for q in questions) if self._costs else None
        self._write({"kind": "call", "size": len(questions), "ms": round(ms, 2), "cost": cost, **self._stages(before)})
        return results

    def _estimate_costs(self, questions: Sequence[Question]) -> list[float]:
        before = self._timings()
        started = time.perf_counter()
        costs = [float(c) for c in self.inner.estimate_costs(questions)]  # type: ignore[attr-defined]
        ms = 1000 * (time.perf_counter() - started)  # may be real work that the calls then reuse
        self._costs = {str(q.question_id): c for q, c in zip(questions, costs)}
        self._write({"kind": "estimate", "costs": costs, "ms": round(ms, 2), **self._stages(before)})
        return costs

    def _timings(self) -> dict[str, float] | None:
        """A copy of the inner reasoner's seconds per stage (summed over its calls), if it keeps them."""
        timings = getattr(self.inner, "timings", None)
        return dict(timings) if isinstance(timings, dict) else None

    def _stages(self, before: dict[str, float] | None) -> dict:
        """{"stages_ms": milliseconds per stage since `before`}, or nothing."""
        after = self._timings()
        if before is None or after is None:
            return {}
        return {"stages_ms": {k: round(1000 * (v - before.get(k, 0.0)), 3) for k, v in after.items()}}

    def cache_stats(self) -> dict[str, dict]:
        """The inner reasoner's cache counters (the worker publishes them), if it has any."""
        stats = getattr(self.inner, "cache_stats", None)
        return stats() if callable(stats) else {}

    def _write(self, row: dict) -> None:
        self._file.write(orjson.dumps({"t": round(time.time(), 3), **row}) + b"\n")


def read_calls(paths: Sequence[Path], since: float = 0.0, until: float = float("inf")) -> dict:
    """What the workers' call logs say about [since, until] (wall seconds): the calls,
    per-question costs, how many polls were estimated (the worker estimates once per
    poll it may split), whether the reasoner could estimate costs at all, and its
    milliseconds per stage summed over calls and estimates (`stages_ms`, empty when the
    reasoner keeps no timings; an estimate does the calls' early stages ahead of them)."""
    calls: list[dict] = []
    stages: dict[str, float] = {}
    costs: list[float] = []
    estimates = 0
    can_estimate: bool | None = None
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_bytes().splitlines():
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # a line cut short by a stopped worker
            if row.get("kind") == "start":
                can_estimate = bool(can_estimate) or row["estimate_costs"]
            elif since <= row.get("t", 0.0) <= until:
                for stage, ms in (row.get("stages_ms") or {}).items():
                    stages[stage] = stages.get(stage, 0.0) + ms
                if row["kind"] == "call":
                    calls.append(row)
                elif row["kind"] == "estimate":
                    costs += row["costs"]
                    estimates += 1
    return {
        "estimate_costs": can_estimate,
        "calls": calls,
        "costs": costs,
        "estimates": estimates,
        "stages_ms": {k: round(v, 1) for k, v in stages.items()},
    }
