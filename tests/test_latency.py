"""`Latency.total_ms` runs to the answer's production, delivery included, so the stream
controller (`streams.feeds` reads it from the `answers` topic) is rewarded with the latency
a reader sees, not with the latency up to the end of inference."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg

from schemas.answer import Answer, Latency, ModelInfo
from schemas.question import Question
from schemas.rows import INSERT_ANSWER, answer_row
from schemas.topics import ANSWERS, QUESTIONS, topic_name
from streams.feeds import service_latency
from tests.conftest import Pipeline, produce_raw, read_topic
from workers.answers import handed_over

HOLD_S = 3.0  # how long the test holds the answers' rows, so their delivery takes that long
CLOCK_TOLERANCE_MS = 2  # both timestamps are whole milliseconds of this machine's clock
STAMP_TO_SEND_MS = 250  # the worker stamps an answer, then hands it to the producer at once


def _answer(question_id: uuid.UUID, question_ts: int, answered_ts: int, latency: Latency) -> Answer:
    return Answer(
        question_id=question_id,
        service="svc-latency",
        user_id="u",
        text="who directed [Heat]",
        status="ok",
        model=ModelInfo(name="m", version="1"),
        batch_id=uuid.uuid4(),
        question_ts=question_ts,
        answered_ts=answered_ts,
        latency=latency,
    )


def test_handed_over_adds_delivery_to_the_stages() -> None:
    stages = Latency(ingest_ms=5, batch_wait_ms=10, queue_ms=20, inference_ms=30, total_ms=65)
    answer = handed_over(_answer(uuid.uuid4(), 1_000, 1_065, stages), at_ms=1_100)
    assert (answer.latency.delivery_ms, answer.latency.total_ms) == (35.0, 100.0)
    assert answer.latency.model_dump(exclude={"delivery_ms", "total_ms"}) == stages.model_dump(
        exclude={"delivery_ms", "total_ms"}
    )
    # a client clock ahead of ours (its ts after our ingest: ingest_ms was clipped to 0)
    ahead = handed_over(_answer(uuid.uuid4(), 1_050, 1_065, stages), at_ms=1_100)
    assert ahead.latency.total_ms == 5 + 10 + 20 + 30 + 35


def _question(text: str) -> Question:
    return Question(
        question_id=uuid.uuid4(),
        service="svc-latency",
        user_id=f"u{uuid.uuid4().hex[:6]}",
        text=text,
        ts=time.time_ns() // 1_000_000,
    )


async def _ask_while_rows_are_held(pipeline: Pipeline, questions: list[Question]) -> None:
    """Insert the questions' rows in a transaction left open for HOLD_S: the worker's claim
    (INSERT ... ON CONFLICT on the same keys) waits for it, then wins once it rolls back."""
    s = pipeline.settings
    conn = await asyncpg.connect(s.dsn)
    try:
        tx = conn.transaction()
        await tx.start()
        blockers = [
            _answer(
                q.question_id, q.ts, q.ts, Latency(ingest_ms=0, batch_wait_ms=0, queue_ms=0, inference_ms=0, total_ms=0)
            )
            for q in questions
        ]
        await conn.executemany(INSERT_ANSWER, [answer_row(b) for b in blockers])
        records = [(q.user_id.encode(), q.to_bytes()) for q in questions]
        await asyncio.to_thread(produce_raw, s, topic_name(s, QUESTIONS), records)
        await asyncio.sleep(HOLD_S)
        await tx.rollback()
    finally:
        await conn.close()


async def _row_latencies(dsn: str, ids: list[uuid.UUID]) -> dict[uuid.UUID, Latency]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT question_id, latency FROM answers WHERE question_id = ANY($1::uuid[])", ids)
        return {r["question_id"]: Latency.model_validate_json(r["latency"]) for r in rows}
    finally:
        await conn.close()


def test_total_latency_runs_to_the_answers_production(pipeline: Pipeline) -> None:
    """A delivery held up (its PostgreSQL claim waits HOLD_S for rows the test holds) shows
    in `delivery_ms` and `total_ms`, and `total_ms` reaches the record's produce timestamp:
    before this, total_ms ended at inference and missed the whole hold."""
    pipeline.configure(reasoner="baseline")
    pipeline.start("streams", "streams")
    pipeline.start("worker-1", "workers")
    s = pipeline.settings
    warm = _question("who directed [Heat]")  # answered once the worker is up
    produce_raw(s, topic_name(s, QUESTIONS), [(warm.user_id.encode(), warm.to_bytes())])
    assert len(read_topic(s, topic_name(s, ANSWERS), expect=1, timeout_s=240)) == 1, pipeline.logs()

    held = [_question(t) for t in ("who directed [Heat]", "what films did [Ginger Rogers] act in", "who wrote [Alien]")]
    asyncio.run(_ask_while_rows_are_held(pipeline, held))
    records = read_topic(s, topic_name(s, ANSWERS), expect=1 + len(held), timeout_s=120)
    by_id = {Answer.from_bytes(r.value()).question_id: r for r in records}
    assert set(by_id) == {warm.question_id, *(q.question_id for q in held)}, pipeline.logs()

    stored = asyncio.run(_row_latencies(s.dsn, [q.question_id for q in held]))
    for q in held:
        record = by_id[q.question_id]
        answer, lat = Answer.from_bytes(record.value()), Answer.from_bytes(record.value()).latency
        produced_ts = record.timestamp()[1]  # the producer's CreateTime, set as the worker sent it
        stages = lat.ingest_ms + lat.batch_wait_ms + lat.queue_ms + lat.inference_ms
        assert lat.delivery_ms >= 1000, lat  # the claim waited for the test's rows
        assert lat.total_ms >= stages + lat.delivery_ms, lat
        assert lat.total_ms >= answer.answered_ts - q.ts + lat.delivery_ms - CLOCK_TOLERANCE_MS, lat
        assert produced_ts >= q.ts + lat.total_ms - CLOCK_TOLERANCE_MS, (produced_ts, q.ts, lat)
        assert produced_ts - (q.ts + lat.total_ms) <= STAMP_TO_SEND_MS, (produced_ts, q.ts, lat)
        assert service_latency(record.value()) == ("svc-latency", lat.total_ms)  # what the controller learns from
        # the row is claimed before production: its figures stop at the claim
        assert stored[q.question_id].total_ms <= lat.total_ms, (stored[q.question_id], lat)
