"""1,000 questions in through a foreign client, exactly 1,000 answers and rows out; a worker
SIGKILLed mid-stream loses and doubles nothing; replay rebuilds the same rows.

"Exactly once" is checked on deliveries, per question id, as multisets: the answers a
read_committed consumer reads from the topic, and the claims that won a question's row (the
workers log each claim's inserted rows). Counting rows could not see a double:
`answers.question_id` is their primary key."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from pathlib import Path

import asyncpg
import orjson

from harness.chaos.verify import claims_in_logs
from reasoning.metaqa import qa_file
from schemas.answer import Answer
from schemas.question import Question
from schemas.topics import ANSWERS, QUESTIONS, topic_name
from streams.replay import replay
from tests.conftest import Pipeline, produce_raw, read_topic, rows

N = 1000


def val_questions(n: int, seed: int) -> list[Question]:
    lines: list[str] = []
    for hop in (1, 2, 3):
        lines += qa_file(hop, "val").read_text().splitlines()
    random.Random(seed).shuffle(lines)
    rng = random.Random(seed + 1)
    return [
        Question(
            question_id=uuid.uuid4(),
            service=f"svc-{rng.randrange(3)}",
            user_id=f"user-{rng.randrange(30)}",
            text=line.split("\t")[0],
            ts=int(time.time() * 1000),
        )
        for line in lines[:n]
    ]


def produce(pipeline: Pipeline, questions: list[Question]) -> None:
    s = pipeline.settings
    produce_raw(s, topic_name(s, QUESTIONS), [(q.user_id.encode(), q.to_bytes()) for q in questions])


def answers_on_topic(pipeline: Pipeline, expect: int, timeout_s: float = 300) -> list[Answer]:
    s = pipeline.settings
    return [Answer.from_bytes(m.value()) for m in read_topic(s, topic_name(s, ANSWERS), expect, timeout_s)]


def differences(seen: Counter, ids: list[uuid.UUID]) -> dict[str, list[str]]:
    """How multiset `seen` differs from each of `ids` exactly once (a few of each, as evidence)."""
    want = Counter(ids)
    doubled = [f"{q} x{n}" for q, n in seen.items() if n > 1]
    return {
        "doubled": doubled[:5],
        "missing": [str(q) for q in ids if seen[q] == 0][:5],
        "foreign": [str(q) for q in seen if q not in want][:5],
    }


def assert_each_delivered_once(
    pipeline: Pipeline, answers: list[Answer], ids: list[uuid.UUID], killed: bool = False
) -> None:
    """Each question answered exactly once on the topic (read_committed) and its row won by
    exactly one claim. With a worker `killed` (SIGKILL), its last claim may have committed in
    PostgreSQL without its log line: such a question shows no won claim (its row and answer
    are checked elsewhere), but none may show two."""
    assert pipeline.log_dir is not None
    on_topic = Counter(a.question_id for a in answers)
    assert on_topic == Counter(ids), differences(on_topic, ids)
    claims = claims_in_logs(Path(pipeline.log_dir))
    won = Counter({q: claims[q] for q in ids if claims[q]})
    if killed:
        assert max(won.values()) == 1, differences(won, ids)
        print(f"claims won: {len(won)} of {len(ids)} questions logged, none twice")
    else:
        assert won == Counter(ids), differences(won, ids)


def wait_claimed(pipeline: Pipeline, ids: list[uuid.UUID], timeout_s: float = 120) -> None:
    """Until a worker has logged winning the claim of one of `ids` (or the timeout)."""
    assert pipeline.log_dir is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        claims = claims_in_logs(Path(pipeline.log_dir))
        if any(claims[q] for q in ids):
            return
        time.sleep(0.02)


def test_thousand_questions_exactly_once(pipeline: Pipeline) -> None:
    questions = val_questions(N, seed=1)
    ids = [q.question_id for q in questions]
    pipeline.start("streams", "streams")
    pipeline.start("worker-1", "workers")
    produce(pipeline, questions)

    answers = answers_on_topic(pipeline, N)
    assert len(answers) >= N, pipeline.logs()
    assert_each_delivered_once(pipeline, answers, ids)
    assert rows(pipeline.settings, "answers", ids) == N
    ok = [a for a in answers if a.status == "ok"]
    assert len(ok) >= 0.9 * N
    assert all(a.paths and a.paths[0][0] == a.topic_entity for a in ok)
    assert all(a.latency.total_ms >= a.latency.inference_ms for a in answers)


def test_worker_sigkill_mid_stream_loses_and_doubles_nothing(pipeline: Pipeline) -> None:
    questions = val_questions(N, seed=2)
    ids = [q.question_id for q in questions]
    pipeline.start("streams", "streams")
    pipeline.start("worker-1", "workers")
    produce(pipeline, questions[:200])
    first = answers_on_topic(pipeline, 1)
    assert first, pipeline.logs()
    produce(pipeline, questions[200:])
    wait_claimed(pipeline, ids[200:])  # worker-1 has begun on them: its next claims are in flight
    pipeline.kill("worker-1")  # mid-stream: batches are still arriving
    pipeline.start("worker-2", "workers")

    answers = answers_on_topic(pipeline, N)
    assert len(answers) >= N, pipeline.logs()
    assert_each_delivered_once(pipeline, answers, ids, killed=True)  # multisets: a redelivery doubles nothing
    assert rows(pipeline.settings, "answers", ids) == N


def test_replay_rebuilds_the_same_rows(pipeline: Pipeline) -> None:
    s = pipeline.settings
    questions = val_questions(50, seed=3)
    ids = [q.question_id for q in questions]
    pipeline.start("streams", "streams")
    pipeline.start("worker-1", "workers")
    produce(pipeline, questions)
    assert len(answers_on_topic(pipeline, 50)) == 50

    async def scenario() -> None:
        conn = await asyncpg.connect(s.dsn)
        try:
            sql = (
                "SELECT question_id, status, answers, paths FROM answers WHERE question_id = ANY($1::uuid[]) ORDER BY 1"
            )
            before = [tuple(r) for r in await conn.fetch(sql, ids)]
            await conn.execute("DELETE FROM answers WHERE question_id = ANY($1::uuid[])", ids)
            result = await replay(s, "answers", start=None, progress=False)
            assert result.applied >= 50
            after = [tuple(r) for r in await conn.fetch(sql, ids)]
            assert after == before
            again = await replay(s, "answers", start=0, progress=False)  # idempotent
            assert again.applied == result.applied
            assert await conn.fetchval("SELECT count(*) FROM answers WHERE question_id = ANY($1::uuid[])", ids) == 50
        finally:
            await conn.close()

    asyncio.run(scenario())


def test_feedback_is_stored_and_replayed_with_export(pipeline: Pipeline, tmp_path) -> None:  # noqa: ANN001
    s = pipeline.settings
    qid = uuid.uuid4()
    records = [
        {
            "question_id": str(qid),
            "user_id": "u",
            "score": 0.1,
            "correction": ["Fred Astaire"],
            "comment": "wrong",
            "ts": 10,
        },
        {"question_id": str(qid), "user_id": "u", "score": 0.9, "ts": 20},
    ]
    produce_raw(s, topic_name(s, "feedback"), [(b"u", orjson.dumps(r)) for r in records])
    pipeline.start("streams", "streams")

    async def scenario() -> None:
        conn = await asyncpg.connect(s.dsn)
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                if await conn.fetchval("SELECT count(*) FROM feedback WHERE question_id = $1", qid) == 2:
                    break
                await asyncio.sleep(0.5)
            assert await conn.fetchval("SELECT count(*) FROM feedback WHERE question_id = $1", qid) == 2
            await conn.execute("DELETE FROM feedback WHERE question_id = $1", qid)
            out = tmp_path / "finetune.jsonl"
            result = await replay(s, "feedback", start=None, export=out, progress=False)
            assert result.applied == 2 and result.exported == 1
            assert orjson.loads(out.read_bytes().splitlines()[0])["correction"] == ["Fred Astaire"]
            assert await conn.fetchval("SELECT count(*) FROM feedback WHERE question_id = $1", qid) == 2
        finally:
            await conn.close()

    asyncio.run(scenario())
