"""Topic names, partition counts and configs: the shape of the Kafka backbone."""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.settings import Settings

QUESTIONS = "questions"
QUESTIONS_DLQ = "questions.dlq"
BATCHES = "batches"
ANSWERS = "answers"
FEEDBACK = "feedback"
FEEDBACK_DLQ = "feedback.dlq"
WORKERS_STATUS = "workers.status"


@dataclass(frozen=True)
class TopicSpec:
    """One topic as it is created at start (idempotently)."""

    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str] = field(default_factory=dict)


def topic_name(settings: Settings, base: str) -> str:
    """Topic names can be prefixed so that tests and tenants share one cluster safely."""
    return f"{settings.topic_prefix}{base}"


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """All topics the system needs, with explicit partitions and retention."""
    retention = {"retention.ms": str(settings.retention_ms), "cleanup.policy": "delete"}
    # A dead letter carries the original as base64 (4/3 larger): room for a 1 MiB original.
    dlq_retention = {
        "retention.ms": str(30 * 24 * 3600 * 1000),
        "cleanup.policy": "delete",
        "max.message.bytes": str(2 * 1024 * 1024),
    }
    rf = settings.replication_factor
    p = settings.partitions
    return [
        TopicSpec(topic_name(settings, QUESTIONS), p, rf, retention),
        TopicSpec(topic_name(settings, BATCHES), p, rf, retention),
        TopicSpec(topic_name(settings, ANSWERS), p, rf, retention),
        TopicSpec(topic_name(settings, FEEDBACK), p, rf, retention),
        TopicSpec(topic_name(settings, QUESTIONS_DLQ), 1, rf, dlq_retention),
        TopicSpec(topic_name(settings, FEEDBACK_DLQ), 1, rf, dlq_retention),
        # Only the latest status per worker matters: compacted, small segments.
        TopicSpec(
            topic_name(settings, WORKERS_STATUS),
            1,
            rf,
            {"cleanup.policy": "compact", "segment.ms": "60000", "min.cleanable.dirty.ratio": "0.1"},
        ),
    ]
