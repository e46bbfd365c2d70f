"""Adaptive batching against the real pipeline: the stream controller learns from real
answers, and the worker's linger controller (`workers.linger_control`, on by default) changes
its choice when the offered load moves (read from the worker's /metrics)."""

from __future__ import annotations

import time
import uuid

from schemas.question import Question
from schemas.topics import ANSWERS, QUESTIONS, topic_name
from tests.conftest import Pipeline, foreign_producer, produce_raw, read_topic
from tests.test_health_shutdown import free_port, get, wait_ready


def test_controller_observes_answers(pipeline: Pipeline) -> None:
    port = free_port()
    pipeline.configure(adaptive_batching=True, health_port=port)
    pipeline.start("streams", "streams")
    pipeline.configure(health_port=0)
    pipeline.start("worker-1", "workers")
    wait_ready(port)
    s = pipeline.settings
    sent = 0
    deadline = time.monotonic() + 240  # the worker loads its models first
    while time.monotonic() < deadline:  # steady trickle for a few controller epochs
        qs = [
            Question(
                question_id=uuid.uuid4(),
                service="svc-a",
                user_id=f"u{i}",
                text="who directed [Heat]",
                ts=int(time.time() * 1000),
            )
            for i in range(20)
        ]
        produce_raw(s, topic_name(s, QUESTIONS), [(q.user_id.encode(), q.to_bytes()) for q in qs])
        sent += len(qs)
        time.sleep(0.5)
        snapshot = get(port, "/metrics")[1]["controller"]
        if snapshot and "svc-a" in snapshot and snapshot["svc-a"]["q"] is not None:
            break
    assert snapshot and snapshot["svc-a"]["q"] is not None, pipeline.logs()
    assert len(read_topic(s, topic_name(s, ANSWERS), expect=sent, timeout_s=120)) == sent


def _question(user: str) -> Question:
    return Question(
        question_id=uuid.uuid4(), service="svc-a", user_id=user, text="who directed [Heat]", ts=int(time.time() * 1000)
    )


def offer(pipeline: Pipeline, rate_qps: float, seconds: float, port: int) -> tuple[int, list[dict]]:
    """Produce questions at `rate_qps` for `seconds` (paced every 100 ms, one user per
    question so they spread over partitions), sampling the worker's linger choice every
    half second. Returns how many were sent and the samples ({"t"} + the controller's
    snapshot: "window_ms", "bucket_qps", "best_ms")."""
    s = pipeline.settings
    producer = foreign_producer(s)
    topic = topic_name(s, QUESTIONS)
    samples: list[dict] = []
    start = next_sample = time.monotonic()
    sent = 0
    while (now := time.monotonic()) < start + seconds:
        for _ in range(int((now - start) * rate_qps) + 1 - sent):
            q = _question(f"u{uuid.uuid4().hex[:6]}")
            producer.produce(topic, value=q.to_bytes(), key=q.user_id.encode())
            sent += 1
        producer.poll(0)
        if now >= next_sample:
            samples.append({"t": round(now - start, 1), **get(port, "/metrics")[1]["linger"]})
            next_sample += 0.5
        time.sleep(0.1)
    assert producer.flush(30) == 0, "questions were not delivered"
    return sent, samples


def test_linger_choice_follows_the_offered_load(pipeline: Pipeline) -> None:
    """Low load (5 q/s): nothing waits (window 0, lowest bucket). High load (140 q/s): the
    controller moves to that load's bucket (100-200 q/s), lingers (window > 0) and scores what
    it tried there. Low again: back to no wait. A controller that ignored the load would stay
    put."""
    port = free_port()
    pipeline.start("streams", "streams")
    pipeline.start("worker-1", "workers", env={"AUTOGLM_HEALTH_PORT": str(port)})
    wait_ready(port)
    s = pipeline.settings
    produce_raw(s, topic_name(s, QUESTIONS), [(b"warm", _question("warm").to_bytes())])
    assert read_topic(s, topic_name(s, ANSWERS), expect=1, timeout_s=240), pipeline.logs()  # models loaded, joined
    assert get(port, "/metrics")[1]["linger"] is not None, "adaptive linger is off"

    sent_low, low = offer(pipeline, rate_qps=5, seconds=6, port=port)
    sent_high, high = offer(pipeline, rate_qps=140, seconds=10, port=port)
    sent_again, low_again = offer(pipeline, rate_qps=5, seconds=6, port=port)
    evidence = {"low": low, "high": high, "low_again": low_again}
    for phase, samples in evidence.items():  # shown with -s: (seconds, bucket q/s, window ms)
        print(phase, [(x["t"], x["bucket_qps"], x["window_ms"]) for x in samples], "learnt:", samples[-1]["best_ms"])

    settled = [x for x in low if x["t"] >= 2]  # a second of the low load measured
    assert settled and all(x["bucket_qps"] == 0 and x["window_ms"] == 0 for x in settled), evidence
    assert [x for x in high if x["bucket_qps"] >= 100 and x["window_ms"] > 0], evidence  # moved with the load
    assert any(float(b) >= 100 for b in high[-1]["best_ms"]), evidence  # and learnt at that load
    assert low_again[-1]["bucket_qps"] == 0 and low_again[-1]["window_ms"] == 0, evidence  # and moved back
    sent = 1 + sent_low + sent_high + sent_again
    assert len(read_topic(s, topic_name(s, ANSWERS), expect=sent, timeout_s=120)) == sent, pipeline.logs()
