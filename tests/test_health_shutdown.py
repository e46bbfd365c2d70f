"""Each process reports liveness and readiness; SIGTERM drains, commits and exits in time."""

from __future__ import annotations

import signal
import socket
import time
import urllib.request
import uuid

import orjson

from schemas.answer import Answer
from schemas.question import Question
from schemas.topics import ANSWERS, QUESTIONS, topic_name
from tests.conftest import Pipeline, produce_raw, read_topic, rows


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, orjson.loads(err.read())


def wait_ready(port: int, timeout_s: float = 240) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            status, body = get(port, "/readyz")
            if status == 200:
                return body
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"port {port} never became ready")


def test_health_endpoints_and_graceful_sigterm(pipeline: Pipeline) -> None:
    streams_port, worker_port = free_port(), free_port()
    pipeline.configure(health_port=streams_port)
    pipeline.start("streams", "streams")
    pipeline.configure(health_port=worker_port)
    worker = pipeline.start("worker-1", "workers")
    assert wait_ready(streams_port)["role"] == "streams"
    assert wait_ready(worker_port)["role"] == "worker"
    assert get(worker_port, "/healthz")[0] == 200 and get(streams_port, "/healthz")[0] == 200

    s = pipeline.settings
    qs = [
        Question(
            question_id=uuid.uuid4(),
            service="s",
            user_id=f"u{i % 7}",
            text="who directed [Heat]",
            ts=int(time.time() * 1000),
        )
        for i in range(300)
    ]
    produce_raw(s, topic_name(s, QUESTIONS), [(q.user_id.encode(), q.to_bytes()) for q in qs])
    assert read_topic(s, topic_name(s, ANSWERS), expect=1, timeout_s=120)
    _, metrics = get(streams_port, "/metrics")
    assert metrics["accepted"] >= 1
    _, worker_metrics = get(worker_port, "/metrics")
    assert worker_metrics["linger"]["window_ms"] in (0.0, 10.0, 25.0, 50.0)  # the adaptive linger, on by default

    started = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=s.shutdown_timeout_s + 10) == 0
    assert time.monotonic() - started < s.shutdown_timeout_s + 10

    pipeline.forget("worker-1")
    pipeline.start("worker-2", "workers")  # whatever was not committed is redelivered here
    answers = [
        Answer.from_bytes(m.value()) for m in read_topic(s, topic_name(s, ANSWERS), expect=len(qs), timeout_s=300)
    ]
    assert {a.question_id for a in answers} == {q.question_id for q in qs}
    assert rows(s, "answers", [q.question_id for q in qs]) == len(qs)


def test_streams_sigterm_flushes_buffered_questions(pipeline: Pipeline) -> None:
    from schemas.batch import Batch
    from schemas.topics import BATCHES

    port = free_port()
    pipeline.configure(health_port=port, batch_window_ms=60_000)  # nothing closes on time
    streams = pipeline.start("streams", "streams")
    wait_ready(port)
    s = pipeline.settings
    qs = [
        Question(
            question_id=uuid.uuid4(), service="s", user_id="u", text="who directed [Heat]", ts=int(time.time() * 1000)
        )
        for _ in range(5)
    ]
    produce_raw(s, topic_name(s, QUESTIONS), [(q.user_id.encode(), q.to_bytes()) for q in qs])
    deadline = time.monotonic() + 60
    while get(port, "/metrics")[1]["buffered"] < 5 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert get(port, "/metrics")[1]["buffered"] == 5

    started = time.monotonic()
    streams.send_signal(signal.SIGTERM)
    streams.wait(timeout=60)
    assert time.monotonic() - started < 60
    batches = [Batch.from_bytes(m.value()) for m in read_topic(s, topic_name(s, BATCHES), expect=1, timeout_s=30)]
    assert [b.trigger for b in batches] == ["flush"]
    assert {x.question.question_id for x in batches[0].questions} == {q.question_id for q in qs}
