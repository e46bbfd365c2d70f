"""Per-(service, user) dynamic batching, observed on the real `batches` topic."""

from __future__ import annotations

import time
import uuid

import orjson

from schemas.batch import Batch
from schemas.question import Question
from schemas.topics import BATCHES, QUESTIONS, topic_name
from tests.conftest import Pipeline, produce_raw, read_topic


def q(service: str, user: str, text: str = "who directed [Heat]") -> bytes:
    return Question(
        question_id=uuid.uuid4(), service=service, user_id=user, text=text, ts=int(time.time() * 1000)
    ).to_bytes()


def batches(settings, expect_questions: int) -> list[Batch]:  # noqa: ANN001
    out: list[Batch] = []
    deadline = time.monotonic() + 90
    while sum(len(b.questions) for b in out) < expect_questions and time.monotonic() < deadline:
        msgs = read_topic(settings, topic_name(settings, BATCHES), expect=1, timeout_s=10)
        out = [Batch.from_bytes(m.value()) for m in msgs]
    return out


def test_triggers_cap_and_clustering(pipeline: Pipeline) -> None:
    # A wide window makes the count and bytes triggers independent of machine speed:
    # 250 questions of one user -> two count-closed batches of 100 (the cap) and a rest;
    # big questions of another user -> bytes trigger; one lone question -> time trigger.
    pipeline.configure(batch_window_ms=1500)
    s = pipeline.settings
    big = "what films did [Ginger Rogers] act in " + "x" * 3000
    records = [(b"u-count", q("svc-a", "u-count")) for _ in range(250)]
    records += [(b"u-bytes", q("svc-a", "u-bytes", big)) for _ in range(7)]
    records += [(b"u-time", q("svc-b", "u-time"))]
    produce_raw(s, topic_name(s, QUESTIONS), records)  # produced before the processor starts
    pipeline.start("streams", "streams")
    got = batches(s, expect_questions=258)

    assert sum(len(b.questions) for b in got) == 258
    assert all(len(b.questions) <= s.batch_max_size for b in got)
    for b in got:  # clustering: one (service, user) per batch
        assert {(x.question.service, x.question.user_id) for x in b.questions} == {
            (b.cluster_key.service, b.cluster_key.user_id)
        }
    by_user: dict[str, list[Batch]] = {}
    for b in got:
        by_user.setdefault(b.cluster_key.user_id, []).append(b)
    assert [len(b.questions) for b in by_user["u-count"] if b.trigger == "count"] == [100, 100]
    assert {b.trigger for b in by_user["u-bytes"]} <= {"bytes", "time"}
    assert any(b.trigger == "bytes" for b in by_user["u-bytes"])
    for b in by_user["u-bytes"]:
        assert sum(len(x.question.text.encode()) for x in b.questions) <= s.batch_max_bytes
    assert [b.trigger for b in by_user["u-time"]] == ["time"]
    assert orjson.loads(got[0].to_bytes())["schema_version"] == 1


def test_default_window_closes_on_time(pipeline: Pipeline) -> None:
    s = pipeline.settings
    pipeline.start("streams", "streams")
    time.sleep(8)  # let the processor join its group
    produce_raw(s, topic_name(s, QUESTIONS), [(b"solo", q("svc", "solo"))])
    started = time.monotonic()
    got = batches(s, expect_questions=1)
    assert [b.trigger for b in got] == ["time"] and len(got[0].questions) == 1
    item = got[0].questions[0]
    wait = got[0].created_ts - item.ingested_ts
    assert s.batch_window_ms <= wait < s.batch_window_ms + 1000, wait
    assert time.monotonic() - started < 60
