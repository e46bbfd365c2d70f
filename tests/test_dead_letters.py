"""Every class of bad input lands in the dead-letter topic with its reason; good input goes on."""

from __future__ import annotations

import base64
import time
import uuid

import orjson

from schemas.batch import Batch
from schemas.dead_letter import DeadLetter
from schemas.topics import BATCHES, FEEDBACK, FEEDBACK_DLQ, QUESTIONS, QUESTIONS_DLQ, topic_name
from tests.conftest import Pipeline, produce_raw, read_topic


def good(text: str = "who directed [Heat]") -> dict:
    return {
        "question_id": str(uuid.uuid4()),
        "service": "svc",
        "user_id": "u1",
        "text": text,
        "ts": int(time.time() * 1000),
    }


BAD: dict[str, bytes] = {
    "invalid_json": b"{not json",
    "invalid_utf8": b'{"text": "\xff\xfe"}',
    "not_an_object": b"[1, 2, 3]",
    "unknown_schema_version": orjson.dumps({**good(), "schema_version": 99}),
    "payload_too_large": orjson.dumps({**good(), "text": "y" * 70_000}),
    "empty_text": orjson.dumps({**good(), "text": "   "}),
    "schema_validation": orjson.dumps({k: v for k, v in good().items() if k != "service"}),
}
MISTYPED = orjson.dumps({**good(), "ts": "yesterday"})


def test_bad_questions_are_dead_lettered_and_good_ones_go_on(pipeline: Pipeline) -> None:
    s = pipeline.settings
    goods = [good() for _ in range(5)]
    records = [(b"u1", raw) for raw in BAD.values()] + [(b"u1", MISTYPED)] + [(b"u1", orjson.dumps(g)) for g in goods]
    produce_raw(s, topic_name(s, QUESTIONS), records)
    pipeline.start("streams", "streams")

    letters = [
        DeadLetter.from_bytes(m.value()) for m in read_topic(s, topic_name(s, QUESTIONS_DLQ), expect=len(BAD) + 1)
    ]
    assert len(letters) == len(BAD) + 1, pipeline.logs()
    by_original = {base64.b64decode(d.original_b64): d for d in letters}
    for error_class, raw in BAD.items():
        letter = by_original[raw]
        assert letter.error_class == error_class, (error_class, letter.error_message)
        assert letter.error_message and letter.source.topic == topic_name(s, QUESTIONS)
    assert by_original[MISTYPED].error_class == "schema_validation" and "ts" in by_original[MISTYPED].error_message

    batched = [Batch.from_bytes(m.value()) for m in read_topic(s, topic_name(s, BATCHES), expect=1)]
    ids = {str(x.question.question_id) for b in batched for x in b.questions}
    assert ids == {g["question_id"] for g in goods}


def test_repeated_question_id_is_batched_once(pipeline: Pipeline) -> None:
    s = pipeline.settings
    g = orjson.dumps(good())
    produce_raw(s, topic_name(s, QUESTIONS), [(b"u1", g), (b"u1", g), (b"u1", g)])
    pipeline.start("streams", "streams")
    batched = [Batch.from_bytes(m.value()) for m in read_topic(s, topic_name(s, BATCHES), expect=1)]
    assert sum(len(b.questions) for b in batched) == 1


def test_bad_feedback_is_dead_lettered(pipeline: Pipeline) -> None:
    s = pipeline.settings
    bad = [b"\xff\x00", orjson.dumps({"question_id": str(uuid.uuid4()), "user_id": "u", "score": 7, "ts": 1})]
    produce_raw(s, topic_name(s, FEEDBACK), [(b"u", raw) for raw in bad])
    pipeline.start("streams", "streams")
    letters = [DeadLetter.from_bytes(m.value()) for m in read_topic(s, topic_name(s, FEEDBACK_DLQ), expect=2)]
    assert sorted(d.error_class for d in letters) == ["invalid_utf8", "schema_validation"]
