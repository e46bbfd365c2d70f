"""Replay: re-read a topic from a time or an offset and rebuild what it feeds, idempotently.

`feedback` -> the `feedback` table (and optionally a fine-tuning JSONL export);
`answers`  -> the `answers` table. Rows are upserted by their keys (feedback_id,
question_id), so replaying twice, or over rows that exist, changes nothing.
The end of a replay is the topic's end when it started (or `--to`), so it terminates.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError
from tqdm import tqdm

from runtime.db import create_pool, executemany_with_retry
from runtime.tail import open_tail
from schemas.answer import Answer
from schemas.feedback import Feedback
from schemas.privacy import scrub_feedback
from schemas.rows import UPSERT_ANSWER, UPSERT_FEEDBACK, answer_row, feedback_row
from schemas.settings import Settings
from schemas.topics import ANSWERS, FEEDBACK, topic_name


@dataclass
class ReplayResult:
    read: int = 0
    applied: int = 0
    skipped: int = 0
    exported: int = 0


def parse_position(text: str | None) -> int | datetime | None:
    """An integer offset, or an ISO-8601 time (UTC when no zone is given)."""
    if text is None:
        return None
    if text.lstrip("-").isdigit():
        return int(text)
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _bounds(
    consumer: AIOKafkaConsumer, parts: list[TopicPartition], start: int | datetime | None, end: int | datetime | None
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """Start and stop offsets per partition (stop is exclusive)."""
    first = await consumer.beginning_offsets(parts)
    last = await consumer.end_offsets(parts)

    async def resolve(pos: int | datetime | None, default: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
        if pos is None:
            return dict(default)
        if isinstance(pos, int):
            return {tp: min(max(pos, first[tp]), last[tp]) for tp in parts}
        found = await consumer.offsets_for_times({tp: int(pos.timestamp() * 1000) for tp in parts})
        return {tp: (found[tp].offset if found[tp] is not None else last[tp]) for tp in parts}

    return await resolve(start, first), await resolve(end, last)


async def replay(
    settings: Settings,
    what: str,
    start: int | datetime | None,
    end: int | datetime | None = None,
    export: Path | None = None,
    progress: bool = True,
) -> ReplayResult:
    """Re-apply `what` ('feedback' or 'answers') from `start` to `end` into PostgreSQL."""
    if what not in (FEEDBACK, ANSWERS):
        raise ValueError(f"cannot replay {what!r}: choose 'feedback' or 'answers'")
    topic = topic_name(settings, what)
    consumer, parts = await open_tail(settings, topic, "earliest", "autoglm-replay")
    pool = await create_pool(settings.dsn)
    result = ReplayResult()
    out: IO[bytes] | None = export.open("wb") if export else None
    try:
        starts, stops = await _bounds(consumer, parts, start, end)
        for tp in parts:
            consumer.seek(tp, starts[tp])
        todo = {tp for tp in parts if starts[tp] < stops[tp]}
        bar = tqdm(total=sum(max(0, stops[tp] - starts[tp]) for tp in parts), disable=not progress, unit="msg")
        while todo:
            polled = await consumer.getmany(*todo, timeout_ms=1000, max_records=2000)
            rows: list[tuple] = []
            for tp, records in polled.items():
                for rec in records:
                    if rec.offset >= stops[tp]:
                        todo.discard(tp)
                        break
                    result.read += 1
                    row = _row(what, rec.value, tp, rec.offset, settings, out, result)
                    if row is not None:
                        rows.append(row)
                if tp in todo and await consumer.position(tp) >= stops[tp]:
                    todo.discard(tp)
            if rows:
                await executemany_with_retry(pool, UPSERT_FEEDBACK if what == FEEDBACK else UPSERT_ANSWER, rows)
                result.applied += len(rows)
            bar.update(sum(len(r) for r in polled.values()))
        bar.close()
    finally:
        if out:
            out.close()
        await consumer.stop()
        await pool.close()
    return result


def _row(
    what: str,
    value: bytes,
    tp: TopicPartition,
    offset: int,
    settings: Settings,
    out: IO[bytes] | None,
    result: ReplayResult,
) -> tuple | None:
    """The upsert parameters for one record, or None for a record that cannot be read."""
    try:
        if what == ANSWERS:
            return answer_row(Answer.from_bytes(value))
        fb = scrub_feedback(Feedback.from_bytes(value))  # the topic holds what users typed
    except (ValueError, ValidationError):
        result.skipped += 1  # invalid feedback was dead-lettered at ingest; nothing to rebuild
        return None
    if out is not None and fb.correction and fb.score < settings.finetune_score_threshold:
        item = {
            "question_id": str(fb.question_id),
            "correction": fb.correction,
            "score": fb.score,
            "comment": fb.comment,
        }
        out.write(orjson.dumps(item) + b"\n")
        result.exported += 1
    return feedback_row(fb, tp.topic, tp.partition, offset)


def run_replay(settings: Settings, what: str, start: str | None, end: str | None, export: Path | None) -> ReplayResult:
    """Synchronous entry point for the CLI."""
    return asyncio.run(replay(settings, what, parse_position(start), parse_position(end), export))
