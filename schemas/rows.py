"""How messages map to PostgreSQL rows: SQL text and parameter tuples, no I/O.

Workers (answers), the feedback agent and replay all write through these, so the
idempotent upsert rules are stated once.
"""

from __future__ import annotations

import orjson

from schemas.answer import Answer
from schemas.feedback import Feedback
from schemas.privacy import scrub

# Insert-if-absent: the first batch to answer a question owns its row; a redelivered
# batch (same batch_id) finds its own row and re-produces, another batch finds a foreign
# owner and skips the question (answered once).
INSERT_ANSWER = """
INSERT INTO answers (question_id, batch_id, service, user_id, text, status, answers, paths,
                     topic_entity, confidence, model_name, model_version, latency,
                     question_ts, answered_ts, payload)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9, $10, $11, $12, $13::jsonb, $14, $15, $16::jsonb)
ON CONFLICT (question_id) DO NOTHING
"""

# Replay rebuilds rows from the topic: overwrite with what the topic says.
UPSERT_ANSWER = INSERT_ANSWER.replace(
    "DO NOTHING",
    """DO UPDATE SET batch_id = EXCLUDED.batch_id, service = EXCLUDED.service,
    user_id = EXCLUDED.user_id, text = EXCLUDED.text, status = EXCLUDED.status,
    answers = EXCLUDED.answers, paths = EXCLUDED.paths, topic_entity = EXCLUDED.topic_entity,
    confidence = EXCLUDED.confidence, model_name = EXCLUDED.model_name,
    model_version = EXCLUDED.model_version, latency = EXCLUDED.latency,
    question_ts = EXCLUDED.question_ts, answered_ts = EXCLUDED.answered_ts,
    payload = EXCLUDED.payload, updated_at = now()""",
)

# A worker's claim, in one round trip: insert-if-absent for a whole delivery (columns as
# arrays, INSERT_ANSWER's rules), and return each question's owner. The final SELECT sees
# the table as it was before this statement, so it returns the rows that already existed
# (a redelivered batch finds its own); `inserted` adds the ones this statement wrote. A row
# another worker inserts concurrently is in neither: its question is not this delivery's.
# The third column, `won`, is true for the rows this statement inserted: the worker counts
# those (each question's row is won once, however often it is delivered; the chaos suite
# and the end-to-end tests count them).
CLAIM_ANSWERS = """
WITH incoming AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                         $7::text[], $8::text[], $9::text[], $10::real[], $11::text[], $12::text[],
                         $13::text[], $14::bigint[], $15::bigint[], $16::text[])
        AS t(question_id, batch_id, service, user_id, text, status, answers, paths, topic_entity,
             confidence, model_name, model_version, latency, question_ts, answered_ts, payload)
), inserted AS (
    INSERT INTO answers (question_id, batch_id, service, user_id, text, status, answers, paths,
                         topic_entity, confidence, model_name, model_version, latency,
                         question_ts, answered_ts, payload)
    SELECT question_id, batch_id, service, user_id, text, status, answers::jsonb, paths::jsonb,
           topic_entity, confidence, model_name, model_version, latency::jsonb, question_ts,
           answered_ts, payload::jsonb
    FROM incoming
    ON CONFLICT (question_id) DO NOTHING
    RETURNING question_id, batch_id
)
SELECT question_id, batch_id, true AS won FROM inserted
UNION ALL
SELECT question_id, batch_id, false AS won FROM answers WHERE question_id = ANY($1::uuid[])
"""

UPSERT_FEEDBACK = """
INSERT INTO feedback (feedback_id, question_id, user_id, score, correction, comment, ts,
                      source_topic, source_partition, source_offset)
VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10)
ON CONFLICT (feedback_id) DO UPDATE SET question_id = EXCLUDED.question_id,
    user_id = EXCLUDED.user_id, score = EXCLUDED.score, correction = EXCLUDED.correction,
    comment = EXCLUDED.comment, ts = EXCLUDED.ts, source_topic = EXCLUDED.source_topic,
    source_partition = EXCLUDED.source_partition, source_offset = EXCLUDED.source_offset,
    updated_at = now()
"""


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


def answer_row(answer: Answer) -> tuple:
    """Parameters for INSERT_ANSWER / UPSERT_ANSWER, in column order.

    The question text is scrubbed of personal data (`schemas.privacy.scrub`, as feedback
    is) in both `text` and `payload`, whether a worker or replay writes the row; the
    answer on the `answers` topic keeps the text as the user sent it."""
    text = scrub(answer.text)
    dumped = answer.model_dump(mode="json")
    dumped["text"] = text
    return (
        answer.question_id,
        answer.batch_id,
        answer.service,
        answer.user_id,
        text,
        answer.status,
        _json(dumped["answers"]),
        _json(dumped["paths"]),
        answer.topic_entity,
        answer.confidence,
        answer.model.name,
        answer.model.version,
        _json(dumped["latency"]),
        answer.question_ts,
        answer.answered_ts,
        _json(dumped),
    )


def feedback_row(feedback: Feedback, topic: str, partition: int, offset: int) -> tuple:
    """Parameters for UPSERT_FEEDBACK, in column order."""
    return (
        feedback.effective_id(),
        feedback.question_id,
        feedback.user_id,
        feedback.score,
        _json(feedback.correction) if feedback.correction is not None else None,
        feedback.comment,
        feedback.ts,
        topic,
        partition,
        offset,
    )
