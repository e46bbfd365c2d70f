"""With adaptive batching on, the controller learns from real answers and the pipeline
still answers everything."""

from __future__ import annotations

import time
import uuid

from schemas.question import Question
from schemas.topics import ANSWERS, QUESTIONS, topic_name
from tests.conftest import Pipeline, produce_raw, read_topic
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
