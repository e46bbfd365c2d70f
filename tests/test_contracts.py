"""Every message type round-trips through its wire form; committed JSON Schemas are fresh."""

from __future__ import annotations

import uuid

import jsonschema
import orjson
import pytest

from schemas.answer import Answer, AnswerItem, Latency, ModelInfo
from schemas.batch import Batch, BatchedQuestion, ClusterKey
from schemas.dead_letter import DeadLetter, SourcePosition
from schemas.export import MESSAGES, expected_files
from schemas.feedback import Feedback
from schemas.question import Question
from schemas.worker_status import WorkerStatus

Q = Question(question_id=uuid.uuid4(), service="s", user_id="u", text="who directed [Heat]", ts=1, context={"a": 1})

SAMPLES = {
    "questions": Q,
    "questions.dlq": DeadLetter(
        original_b64="e30=",
        error_class="invalid_json",
        error_message="x",
        source=SourcePosition(topic="questions", partition=0, offset=3),
        ts=5,
    ),
    "batches": Batch(
        batch_id=uuid.uuid4(),
        cluster_key=ClusterKey(service="s", user_id="u"),
        trigger="time",
        questions=[BatchedQuestion(question=Q, ingested_ts=2)],
        created_ts=3,
    ),
    "answers": Answer(
        question_id=Q.question_id,
        service="s",
        user_id="u",
        text=Q.text,
        status="ok",
        answers=[AnswerItem(entity="Michael Mann", score=0.9)],
        paths=[["Heat", "directed_by", "Michael Mann"]],
        confidence=0.9,
        model=ModelInfo(name="baseline", version="1"),
        batch_id=uuid.uuid4(),
        question_ts=1,
        answered_ts=9,
        latency=Latency(ingest_ms=1, batch_wait_ms=2, queue_ms=3, inference_ms=4, total_ms=10),
    ),
    "feedback": Feedback(question_id=Q.question_id, user_id="u", score=0.5, correction=["Michael Mann"], ts=7),
    "workers.status": WorkerStatus(
        node_id="w-1", partitions=[0, 3], load_ratio=0.4, avg_service_ms=12.5, queue_len=2, ts=8
    ),
}


@pytest.mark.parametrize("topic", sorted(MESSAGES))
def test_round_trip_and_schema(topic: str) -> None:
    msg = SAMPLES[topic]
    raw = msg.to_bytes()
    assert MESSAGES[topic].from_bytes(raw) == msg
    assert orjson.loads(raw)["schema_version"] == 1
    schema = orjson.loads(expected_files()[next(p for p in expected_files() if p.name.startswith(topic + ".schema"))])
    jsonschema.validate(orjson.loads(raw), schema)


def test_committed_json_schemas_are_up_to_date() -> None:
    for path, content in expected_files().items():
        assert path.exists(), f"{path.name} missing: run `make schemas` and commit"
        assert path.read_bytes() == content, f"{path.name} is stale: run `make schemas` and commit"


def test_feedback_id_is_derived_deterministically() -> None:
    fb = SAMPLES["feedback"]
    assert isinstance(fb, Feedback)
    assert fb.effective_id() == Feedback.from_bytes(fb.to_bytes()).effective_id()
