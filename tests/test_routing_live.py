"""Load-aware routing on the real pipeline: workers publish status, the router sends batches
to one home partition per worker, spreads a heavy user's batches over the workers within
the bound, and everything is still answered once."""

from __future__ import annotations

import time
import uuid

from schemas.question import Question
from schemas.topics import ANSWERS, QUESTIONS, WORKERS_STATUS, topic_name
from schemas.worker_status import WorkerStatus
from tests.conftest import Pipeline, produce_raw, read_topic, rows
from tests.test_health_shutdown import free_port, get, wait_ready


def test_status_published_and_heavy_user_spread(pipeline: Pipeline) -> None:
    port = free_port()
    pipeline.configure(load_aware_routing=True, health_port=port, batch_max_size=10)
    pipeline.start("streams", "streams")
    pipeline.configure(health_port=0)
    pipeline.start("worker-1", "workers")
    pipeline.start("worker-2", "workers")
    wait_ready(port)
    s = pipeline.settings
    statuses = [
        WorkerStatus.from_bytes(m.value())
        for m in read_topic(s, topic_name(s, WORKERS_STATUS), expect=1, timeout_s=240)
    ]
    assert statuses and statuses[-1].partitions, pipeline.logs()
    deadline = time.monotonic() + 240
    while len(targets := get(port, "/metrics")[1]["routing"]["targets"]) != 2:  # both workers joined and reported
        assert time.monotonic() < deadline, (targets, pipeline.logs())
        time.sleep(1)

    heavy = [
        Question(
            question_id=uuid.uuid4(),
            service="svc",
            user_id="heavy",
            text="who directed [Heat]",
            ts=int(time.time() * 1000),
        )
        for _ in range(300)
    ]
    produce_raw(s, topic_name(s, QUESTIONS), [(q.user_id.encode(), q.to_bytes()) for q in heavy])
    answers = read_topic(s, topic_name(s, ANSWERS), expect=len(heavy), timeout_s=180)
    assert len(answers) == len(heavy)
    assert rows(s, "answers", [q.question_id for q in heavy]) == len(heavy)
    routing = get(port, "/metrics")[1]["routing"]
    assert routing["spilled"] > 0
    assert {p for p, load in enumerate(routing["loads"]) if load > 0} == set(routing["targets"])
