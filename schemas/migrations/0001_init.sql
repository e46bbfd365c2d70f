-- Answers: one row per question_id, whatever the number of deliveries or replays.
-- batch_id records which batch owns the answer: a redelivered batch re-produces its
-- answers, a different batch carrying an already-answered question_id does not.
CREATE TABLE IF NOT EXISTS answers (
    question_id   uuid PRIMARY KEY,
    batch_id      uuid        NOT NULL,
    service       text        NOT NULL,
    user_id       text        NOT NULL,
    text          text        NOT NULL,
    status        text        NOT NULL,
    answers       jsonb       NOT NULL,
    paths         jsonb       NOT NULL,
    topic_entity  text,
    confidence    real        NOT NULL,
    model_name    text        NOT NULL,
    model_version text        NOT NULL,
    latency       jsonb       NOT NULL,
    question_ts   bigint      NOT NULL,
    answered_ts   bigint      NOT NULL,
    payload       jsonb       NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS answers_user_idx ON answers (service, user_id);

-- Feedback: keyed by feedback_id (derived when the producer sent none), so replay is idempotent.
CREATE TABLE IF NOT EXISTS feedback (
    feedback_id      uuid PRIMARY KEY,
    question_id      uuid        NOT NULL,
    user_id          text        NOT NULL,
    score            real        NOT NULL CHECK (score >= 0 AND score <= 1),
    correction       jsonb,
    comment          text,
    ts               bigint      NOT NULL,
    source_topic     text        NOT NULL,
    source_partition int         NOT NULL,
    source_offset    bigint      NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS feedback_question_idx ON feedback (question_id);
