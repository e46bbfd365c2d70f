"""Verification by question id: one row in PostgreSQL and at least one answer on the topic.

`lost` counts sent questions missing either; `duplicate_rows` counts rows beyond the first
per question id; `duplicates_on_topic` counts answers beyond the first that a
read_committed consumer saw.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import asyncpg

from harness.chaos.watch import AnswerWatcher
from schemas.settings import Settings


@dataclass(frozen=True)
class Tally:
    sent: int
    answered: int  # sent questions with at least one answer on the topic
    lost: int  # sent questions without an answer on the topic or without a row
    duplicate_rows: int
    duplicates_on_topic: int
    missing_rows: int  # part of lost: no row in PostgreSQL
    missing_on_topic: int  # part of lost: no answer on the topic
    lost_ids: tuple[str, ...]  # the first few, as evidence
    duplicate_examples: tuple[dict, ...] = ()  # the first few doubled answers, where they sat


async def row_counts(dsn: str, ids: list[uuid.UUID], attempts: int = 60) -> dict[uuid.UUID, int]:
    """Rows per question id (retrying while PostgreSQL restarts)."""
    for attempt in range(attempts):
        try:
            conn = await asyncpg.connect(dsn)
            break
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(1.0)
    try:
        rows = await conn.fetch(
            "SELECT question_id, count(*) AS n FROM answers WHERE question_id = ANY($1::uuid[]) GROUP BY 1", ids
        )
    finally:
        await conn.close()
    return {r["question_id"]: r["n"] for r in rows}


async def tally(settings: Settings, ids: list[uuid.UUID], watcher: AnswerWatcher) -> Tally:
    rows = await row_counts(settings.dsn, ids)
    no_row = [q for q in ids if rows.get(q, 0) == 0]
    not_seen = [q for q in ids if watcher.seen.get(q, 0) == 0]
    lost = sorted(set(no_row) | set(not_seen), key=str)
    doubled = sorted((q for q in ids if watcher.seen.get(q, 0) > 1), key=str)
    examples = tuple(
        {
            "question_id": str(q),
            "answers": [
                {"partition": p, "offset": o, "batch_id": b, "answered_ts": a, "record_ts": r}
                for p, o, b, a, r in watcher.where.get(q, [])
            ],
        }
        for q in doubled[:5]
    )
    return Tally(
        sent=len(ids),
        answered=len(ids) - len(not_seen),
        lost=len(lost),
        duplicate_rows=sum(max(0, rows.get(q, 0) - 1) for q in ids),
        duplicates_on_topic=sum(max(0, watcher.seen.get(q, 0) - 1) for q in ids),
        missing_rows=len(no_row),
        missing_on_topic=len(not_seen),
        lost_ids=tuple(str(q) for q in lost[:10]),
        duplicate_examples=examples,
    )
