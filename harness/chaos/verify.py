"""Verification by question id: deliveries counted, not rows.

`answers.question_id` is the primary key, so counting rows cannot see a question delivered
twice. What is counted instead, per question id (multisets):
* `duplicates_on_topic`: answers beyond the first that a read_committed consumer saw;
* `duplicate_claims`: inserts beyond the first that won the worker's claim (the rows a
  claim statement inserted, `schemas.rows.CLAIM_ANSWERS`' `won` column, which each worker
  logs as it gets them: `claims_in_logs`); `missing_claims`: sent questions whose won claim
  no log shows. Zero unless a worker was SIGKILLed: its last claim can commit in PostgreSQL
  before its log line is written (the row and the answer are then checked as `lost`).
`lost` counts sent questions without a row in PostgreSQL or without an answer on the topic.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import orjson

from harness.watch import AnswerWatcher
from schemas.settings import Settings
from workers.service import CLAIMED_LOG


@dataclass(frozen=True)
class Tally:
    sent: int
    answered: int  # sent questions with at least one answer on the topic
    lost: int  # sent questions without an answer on the topic or without a row
    duplicate_claims: int  # inserts that won the claim, beyond the first per question id
    duplicates_on_topic: int  # read_committed answers beyond the first per question id
    missing_rows: int  # part of lost: no row in PostgreSQL
    missing_on_topic: int  # part of lost: no answer on the topic
    lost_ids: tuple[str, ...]  # the first few, as evidence
    missing_claims: int = 0  # sent questions whose row no worker reported winning
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


def claims_in_logs(log_dir: Path) -> Counter[uuid.UUID]:
    """Claims won per question id, from every process log in `log_dir` (a worker writes one
    `CLAIMED_LOG` line per claim that inserted rows, as the claim returns, so a worker that
    is SIGKILLed later has already told; a restarted slot appends to its slot's log)."""
    won: Counter[uuid.UUID] = Counter()
    marker = f'"msg":"{CLAIMED_LOG}"'.encode()
    for path in sorted(log_dir.glob("*.log")):
        for line in path.read_bytes().splitlines():
            if marker not in line:
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:  # a line cut short by a SIGKILL
                continue
            won.update(uuid.UUID(q) for q in record.get("question_ids", []))
    return won


async def tally(settings: Settings, ids: list[uuid.UUID], watcher: AnswerWatcher, claims: Counter[uuid.UUID]) -> Tally:
    """The verdict on `ids`: rows in PostgreSQL, answers `watcher` saw on the topic, and
    `claims` (claims won per question id: `claims_in_logs`)."""
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
        duplicate_claims=sum(max(0, claims[q] - 1) for q in ids),
        duplicates_on_topic=sum(max(0, watcher.seen.get(q, 0) - 1) for q in ids),
        missing_rows=len(no_row),
        missing_on_topic=len(not_seen),
        lost_ids=tuple(str(q) for q in lost[:10]),
        missing_claims=sum(1 for q in ids if claims[q] == 0),
        duplicate_examples=examples,
    )
