"""The one answer watcher of the harnesses: answers read as a consumer reads them
(isolation_level=read_committed, from the beginning of the topic), counted per question id
as a multiset (a doubled delivery shows as a count of 2), with when the first arrived and
where each sat. The chaos run and the fuzzer both verify with it; group lag is read by
`runtime.lag.LagReader`."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import orjson

from runtime.tail import records, tail
from schemas.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class AnswerWatcher:
    """Counts answers per question id on one topic (read_committed, from offset 0)."""

    settings: Settings
    topic: str
    seen: Counter[uuid.UUID] = field(default_factory=Counter)
    first_at: dict[uuid.UUID, float] = field(default_factory=dict)  # wall time of first arrival
    # where each answer sat: (partition, offset, batch_id, answered_ts, record timestamp)
    where: dict[uuid.UUID, list[tuple[int, int, str, int, int]]] = field(default_factory=dict)
    records: int = 0
    last_at: float = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        async with tail(self.settings, self.topic, "earliest", "autoglm-answer-watch") as consumer:
            async for polled in records(consumer, timeout_ms=200, max_records=5000):
                now = time.time()
                for rec in polled:
                    self._note(rec.partition, rec.offset, rec.timestamp, rec.value, now)
                if stop.is_set():
                    return

    def _note(self, partition: int, offset: int, timestamp: int, value: bytes, now: float) -> None:
        try:
            answer = orjson.loads(value)
            qid = uuid.UUID(answer["question_id"])
            evidence = (partition, offset, str(answer.get("batch_id")), answer.get("answered_ts"), timestamp)
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable record on %s", self.topic)
            return
        self.records += 1
        self.last_at = now
        self.seen[qid] += 1
        self.first_at.setdefault(qid, now)
        self.where.setdefault(qid, []).append(evidence)

    def answered(self, ids: list[uuid.UUID]) -> int:
        return sum(1 for q in ids if q in self.first_at)

    def all_answered(self, ids: list[uuid.UUID]) -> bool:
        return all(q in self.first_at for q in ids)

    def first_answer_after(self, t: float, ids: list[uuid.UUID] | None = None) -> float | None:
        """Wall time of the earliest first arrival after `t` (among `ids` when given)."""
        pool = self.first_at.items() if ids is None else ((q, self.first_at[q]) for q in ids if q in self.first_at)
        later = [at for _, at in pool if at > t]
        return min(later) if later else None
