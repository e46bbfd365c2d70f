"""`autoglm fuzz`: produce generated hostile records to an isolated pipeline and verify it.

The stream processor and a worker run as real child processes on a private topic prefix.
Every record is produced with its expected fate (`harness.fuzz.cases`); Kafka tells where
each landed (partition, offset), and the dead letters name their source position, so the
verification is per record: each invalid record has exactly its dead letter with the
expected class and its original bytes, each valid question an answer on the topic and a
row, each valid feedback a (scrubbed) row. The processes must still be alive at the end
and their logs free of tracebacks. One JSON summary is printed; exit 0 when all holds.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer

from harness.fuzz.cases import FEEDBACK, QUESTIONS, Case, expected_by_decoder, generate
from harness.isolation import isolate
from harness.watch import AnswerWatcher
from runtime.fleet import Fleet
from runtime.kafka_config import producer_config
from runtime.tail import records, tail
from schemas.dead_letter import DeadLetter
from schemas.feedback import Feedback
from schemas.privacy import scrub_feedback
from schemas.settings import Settings, get_settings
from schemas.topics import ANSWERS, FEEDBACK_DLQ, QUESTIONS_DLQ, topic_name

REPO = Path(__file__).resolve().parent.parent.parent


async def produce(settings: Settings, cases: list[Case]) -> float:
    """Send every case; fill in where Kafka put it. Returns seconds taken."""
    producer = AIOKafkaProducer(**producer_config(settings, "autoglm-fuzz"))
    await producer.start()
    t0 = time.monotonic()
    try:
        pending: list[tuple[Case, asyncio.Future]] = []
        for case in cases:
            fut = await producer.send(topic_name(settings, case.topic), value=case.value, key=case.key)
            pending.append((case, fut))
            if len(pending) >= 5000:
                await _settle(pending)
        await _settle(pending)
    finally:
        await producer.stop()
    return time.monotonic() - t0


async def _settle(pending: list[tuple[Case, asyncio.Future]]) -> None:
    for case, fut in pending:
        meta = await fut
        case.partition, case.offset = meta.partition, meta.offset
    pending.clear()


class Collected:
    """What came out: dead letters by source position, answered question ids."""

    def __init__(self, settings: Settings) -> None:
        self.letters: dict[tuple[str, int, int], list[DeadLetter]] = {}
        self.answers = AnswerWatcher(settings, topic_name(settings, ANSWERS))
        self.readers: list[asyncio.Task] = []

    @property
    def answered(self) -> Counter[uuid.UUID]:
        """Answers seen per question id (a multiset)."""
        return self.answers.seen


async def collect(settings: Settings, collected: Collected, stop: asyncio.Event) -> None:
    """Read both DLQs (read_committed, from the start) until told to stop; the answers are
    counted by the harness's answer watcher (`collected.answers`), alongside."""
    watcher = asyncio.create_task(collected.answers.run(stop))
    try:
        for dlq in (QUESTIONS_DLQ, FEEDBACK_DLQ):
            collected.readers.append(asyncio.create_task(_dead_letters(settings, dlq, collected, stop)))
        await asyncio.gather(*collected.readers)
    finally:
        await watcher


async def _dead_letters(settings: Settings, dlq: str, collected: Collected, stop: asyncio.Event) -> None:
    big = {"max_partition_fetch_bytes": 4 * 1024 * 1024, "fetch_max_bytes": 16 * 1024 * 1024}
    async with tail(settings, topic_name(settings, dlq), "earliest", "autoglm-fuzz-dlq", **big) as consumer:
        async for polled in records(consumer, timeout_ms=500, max_records=5000):
            for rec in polled:
                letter = DeadLetter.from_bytes(rec.value)
                pos = (letter.source.topic, letter.source.partition, letter.source.offset)
                collected.letters.setdefault(pos, []).append(letter)
            if stop.is_set():
                return


async def stored_feedback(settings: Settings, ids: list[uuid.UUID]) -> dict[uuid.UUID, asyncpg.Record]:
    conn = await asyncpg.connect(settings.dsn)
    try:
        rows = await conn.fetch(
            "SELECT feedback_id, user_id, score, comment, correction FROM feedback WHERE feedback_id = ANY($1::uuid[])",
            ids,
        )
        return {row["feedback_id"]: row for row in rows}
    finally:
        await conn.close()


async def answer_rows(settings: Settings, ids: list[uuid.UUID]) -> int:
    conn = await asyncpg.connect(settings.dsn)
    try:
        return await conn.fetchval("SELECT count(*) FROM answers WHERE question_id = ANY($1::uuid[])", ids)
    finally:
        await conn.close()


async def warm_up(settings: Settings, timeout_s: float = 300.0) -> float:
    """Ask one probe question and wait for its answer: the stream processor and a worker are
    then consuming, so the measured rate is the pipeline's and not its start-up."""
    t0 = time.monotonic()
    probe = Case(QUESTIONS, "probe", None)
    qid = uuid.uuid4()
    probe.value = orjson.dumps(
        {
            "question_id": str(qid),
            "service": "fuzz-probe",
            "user_id": "probe",
            "text": "who directed [Heat]",
            "ts": int(time.time() * 1000),
        }
    )
    await produce(settings, [probe])
    collected, stop = Collected(settings), asyncio.Event()
    reader = asyncio.create_task(collect(settings, collected, stop))
    try:
        while qid not in collected.answered and not reader.done():
            if time.monotonic() - t0 > timeout_s:
                raise TimeoutError(f"the pipeline answered no probe question within {timeout_s:.0f}s")
            await asyncio.sleep(0.5)
    finally:
        stop.set()
        await reader
    return time.monotonic() - t0


async def wait_for_outcome(
    settings: Settings, cases: list[Case], fleet: Fleet, timeout_s: float, stall_s: float
) -> tuple[Collected, dict]:
    """Collect until every expected dead letter, answer and feedback row is there, the
    pipeline stops making progress for `stall_s`, a process dies, or `timeout_s` passes.
    Also notes when each of the three was complete (seconds since the first record was sent)."""
    bad = [c for c in cases if c.expect is not None]
    good_q = {c.good_id for c in cases if c.expect is None and c.topic == QUESTIONS}
    good_f = [c.good_id for c in cases if c.expect is None and c.topic == FEEDBACK]
    collected, stop = Collected(settings), asyncio.Event()
    reader = asyncio.create_task(collect(settings, collected, stop))
    t0 = last_change = time.monotonic()
    seen, stored, complete = (-1, -1, -1), {}, {}
    try:
        while True:
            await asyncio.sleep(1.0)
            stored = await stored_feedback(settings, good_f)  # type: ignore[arg-type]
            now = (len(collected.letters), len(good_q.intersection(collected.answered)), len(stored))
            for name, have, want in zip(
                ("dead_letters", "answers", "feedback_rows"), now, (len(bad), len(good_q), len(good_f))
            ):
                if have >= want and name not in complete:
                    complete[name] = round(time.monotonic() - t0, 1)
            if now != seen:
                seen, last_change = now, time.monotonic()
            if (
                len(complete) == 3
                or fleet.exited()
                or reader.done()
                or time.monotonic() - t0 > timeout_s
                or time.monotonic() - last_change > stall_s
            ):
                break
        await asyncio.sleep(3.0)  # let duplicates, if any, show
    finally:
        stop.set()
        await reader
    return collected, {"stored": stored, "wait_s": time.monotonic() - t0, "complete_s": complete}


async def produce_and_wait(
    settings: Settings, cases: list[Case], fleet: Fleet, timeout_s: float
) -> tuple[Collected, dict, float]:
    """Send while already collecting, so the clock covers sending and processing together."""
    outcome = asyncio.create_task(wait_for_outcome(settings, cases, fleet, timeout_s, stall_s=120))
    produce_s = await produce(settings, cases)
    collected, extra = await outcome
    return collected, extra, produce_s


def verify(cases: list[Case], collected: Collected, stored: dict, rows: int) -> dict:
    """Per-record comparison of what came out with what had to."""
    expected, got, wrong, missing, mismatched_bytes = Counter(), Counter(), Counter(), 0, 0
    examples: list[dict] = []
    positions = set()
    for c in cases:
        pos = (c.meta.get("topic_name", ""), c.partition, c.offset)
        positions.add(pos)
        letters = collected.letters.get(pos, [])
        if c.expect is None:
            if letters:
                wrong[f"{c.category}->{letters[0].error_class}"] += 1
                examples.append(
                    {  # a valid record was refused
                        "category": c.category,
                        "expected": None,
                        "got": letters[0].error_class,
                        "message": letters[0].error_message[:200],
                    }
                )
            continue
        expected[c.expect] += 1
        if not letters:
            missing += 1
            if len(examples) < 10:
                examples.append({"category": c.category, "expected": c.expect, "got": "nothing"})
            continue
        got[letters[0].error_class] += 1
        if letters[0].error_class != c.expect:
            wrong[f"{c.category}:{c.expect}->{letters[0].error_class}"] += 1
            if len(examples) < 10:
                examples.append(
                    {
                        "category": c.category,
                        "expected": c.expect,
                        "got": letters[0].error_class,
                        "message": letters[0].error_message[:200],
                    }
                )
        if base64.b64decode(letters[0].original_b64) != (c.value or b""):
            mismatched_bytes += 1
    good_q = {c.good_id for c in cases if c.expect is None and c.topic == QUESTIONS}
    good_f = [c for c in cases if c.expect is None and c.topic == FEEDBACK]
    unscrubbed = sum(1 for c in good_f if c.good_id in stored and not _stored_as_scrubbed(c, stored[c.good_id]))
    return {
        "invalid_expected": sum(expected.values()),
        "dead_lettered": sum(len(v) for v in collected.letters.values()),
        "dlq_by_class_expected": dict(sorted(expected.items())),
        "dlq_by_class_got": dict(sorted(got.items())),
        "dlq_missing": missing,
        "dlq_wrong_class": dict(wrong),
        "dlq_duplicates": sum(len(v) - 1 for v in collected.letters.values()),
        "dlq_unexpected_source": sum(1 for pos in collected.letters if pos not in positions),
        "dlq_original_bytes_mismatch": mismatched_bytes,
        "good_questions": len(good_q),
        "answered_on_topic": len(good_q.intersection(collected.answered)),
        "answer_rows": rows,
        "answer_duplicates_on_topic": sum(collected.answered[q] - 1 for q in good_q if collected.answered[q] > 1),
        "good_feedback": len(good_f),
        "feedback_rows": len(stored),
        "feedback_rows_not_scrubbed_or_altered": unscrubbed,
        "examples": examples[:10],
    }


def _stored_as_scrubbed(case: Case, row: asyncpg.Record) -> bool:
    """The row holds the sent feedback with its free text scrubbed, everything else verbatim."""
    sent = scrub_feedback(Feedback.from_bytes(case.value or b""))
    correction = orjson.loads(row["correction"]) if row["correction"] is not None else None
    return (row["user_id"], row["comment"], correction) == (sent.user_id, sent.comment, sent.correction) and abs(
        row["score"] - sent.score
    ) < 1e-6


def run(
    settings: Settings,
    n: int,
    seed: int,
    workers: int = 1,
    timeout_s: float | None = None,
    log_dir: Path | None = None,
) -> dict:
    """The whole fuzz run on `settings` (topics must exist); returns the summary."""
    t_start = time.monotonic()
    cases = generate(n, seed, settings.topic_prefix, settings.max_payload_bytes)
    for c in cases:
        c.meta["topic_name"] = topic_name(settings, c.topic)
    oracle_disagreements = Counter(
        f"{c.category}:{c.expect}->{d}"
        for c in cases
        if (d := expected_by_decoder(c, settings.max_payload_bytes)) != c.expect
    )
    t_generated = time.monotonic()
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="autoglm-fuzz-"))
    fleet = Fleet(settings, log_dir)
    fleet.start_pipeline(workers)
    try:
        warm_up_s = asyncio.run(warm_up(settings))
        collected, extra, produce_s = asyncio.run(produce_and_wait(settings, cases, fleet, timeout_s or 600 + n / 25))
        dead = sorted(fleet.exited())
    finally:
        fleet.stop_all()
    good_q = [c.good_id for c in cases if c.expect is None and c.topic == QUESTIONS]
    rows = asyncio.run(answer_rows(settings, good_q))  # type: ignore[arg-type]
    summary = {
        "n": n,
        "seed": seed,
        "topic_prefix": settings.topic_prefix,
        "sent": dict(Counter(c.topic for c in cases)),
        "by_category": dict(Counter(c.category for c in cases)),
    }
    summary.update(verify(cases, collected, extra["stored"], rows))
    tracebacks = fleet.tracebacks()
    summary.update(
        {
            "oracle_disagreements": dict(oracle_disagreements),
            "processes_died": dead,
            "tracebacks_in_logs": tracebacks,
            "log_dir": str(log_dir),
            "generate_s": round(t_generated - t_start, 1),
            "warm_up_s": round(warm_up_s, 1),
            "produce_s": round(produce_s, 1),
            "complete_s": extra["complete_s"],
            "records_per_s": round(n / max(1e-9, max(extra["complete_s"].values(), default=extra["wait_s"])), 1),
            "total_s": round(time.monotonic() - t_start, 1),
        }
    )
    summary["ok"] = (
        not dead
        and not any(tracebacks.values())
        and not oracle_disagreements
        and summary["dlq_missing"] == 0
        and not summary["dlq_wrong_class"]
        and summary["dlq_duplicates"] == 0
        and summary["dlq_original_bytes_mismatch"] == 0
        and summary["dead_lettered"] == summary["invalid_expected"]
        and summary["answered_on_topic"] == summary["good_questions"] == summary["answer_rows"]
        and summary["answer_duplicates_on_topic"] == 0
        and summary["feedback_rows"] == summary["good_feedback"]
        and summary["feedback_rows_not_scrubbed_or_altered"] == 0
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="autoglm fuzz", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="records to generate (both topics)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--timeout", type=float, help="seconds to wait for the outcome (default 120 + n/200)")
    parser.add_argument("--keep-topics", action="store_true", help="leave the isolated topics on the broker")
    parser.add_argument("--log-dir", type=Path)
    args = parser.parse_args(argv)
    from runtime.services import up
    from runtime.services.kafka import delete_topics, ensure_topics

    base = get_settings()
    with contextlib.redirect_stdout(sys.stderr):
        up(base)
    settings = isolate(base, "fuzz", partitions=3)
    ensure_topics(settings)
    if args.log_dir:
        args.log_dir.mkdir(parents=True, exist_ok=True)
    try:
        summary = run(settings, args.n, args.seed, args.workers, args.timeout, args.log_dir)
    finally:
        if not args.keep_topics:
            delete_topics(settings)
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
