"""Question ingest: validate, dead-letter the bad, deduplicate, batch per (service, user).

The path of one record: raw bytes -> `schemas.wire.decode` -> either a dead letter
(produced, then the source is acknowledged) or a place in its cluster's buffer. When the
buffer closes, the batch is produced to `batches` and only then are its source records
acknowledged, so a crash between ingest and produce loses nothing: Kafka redelivers.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson

from runtime.clock import now_ms
from schemas.batch import Batch, BatchedQuestion, ClusterKey, Rejection, Trigger
from schemas.question import Question
from schemas.safety import rules_from_settings
from schemas.settings import Settings
from schemas.topics import BATCHES, QUESTIONS_DLQ, topic_name
from schemas.wire import WireError, dead_letter, decode
from streams.batcher import KeyedBatcher
from streams.controller import BatchController
from streams.dedup import RecentIds
from streams.quota import Quotas
from streams.routing import BoundedLoadRouter
from streams.sink import DeliverySink

log = logging.getLogger(__name__)

Ack = Callable[[], Awaitable[None]]


def payload_bytes(question: Question) -> int:
    """What the bytes limit counts: the question's content (text, topic entity, context),
    not the JSON envelope, so ids and timestamps do not eat into a batch."""
    size = len(question.text.encode())
    if question.topic_entity:
        size += len(question.topic_entity.encode())
    if question.context:
        size += len(orjson.dumps(question.context))
    return size


@dataclass(frozen=True)
class Pending:
    """A validated question waiting in a buffer, with the ack of its source record."""

    question: Question
    ingested_ts: int
    ack: Ack
    rejection: Rejection | None = None


@dataclass
class IngestCounters:
    accepted: int = 0
    dead_lettered: int = 0
    duplicates: int = 0
    batches: int = 0
    blocked: int = 0
    over_quota: int = 0


class Ingest:
    """Turns question records into batches; owns the batcher and the dedup memory."""

    def __init__(
        self,
        settings: Settings,
        sink: DeliverySink,
        controller: BatchController | None = None,
        router: BoundedLoadRouter | None = None,
    ) -> None:
        self.router = router
        self.settings = settings
        self.sink = sink
        self.source_topic = topic_name(settings, "questions")
        self.dlq_topic = topic_name(settings, QUESTIONS_DLQ)
        self.batch_topic = topic_name(settings, BATCHES)
        self.recent = RecentIds(settings.dedup_capacity)
        self.counters = IngestCounters()
        self.rules = rules_from_settings(settings)
        self.quotas = Quotas(settings.quota_rate_per_s, settings.quota_burst, settings.quota_overrides)
        self.batcher: KeyedBatcher[ClusterKey, Pending] = KeyedBatcher(
            self._emit,
            window_s=settings.batch_window_ms / 1000,
            max_size=settings.batch_max_size,
            max_bytes=settings.batch_max_bytes,
            limits=(lambda key: controller.limits(key.service)) if controller else None,
            min_expected=settings.batch_min_expected,
            arrival_keys=settings.batch_arrival_keys,
        )

    async def handle(self, key: bytes | None, value: bytes | None, partition: int, offset: int, ack: Ack) -> None:
        """Process one source record. Never raises on bad input."""
        try:
            question = decode(value, Question, self.settings.max_payload_bytes)
        except WireError as err:
            self.counters.dead_lettered += 1
            log.warning(
                "question dead-lettered",
                extra={"error_class": err.error_class, "partition": partition, "offset": offset},
            )
            record = dead_letter(value, key, err, self.source_topic, partition, offset)
            await self.sink.send_then(self.dlq_topic, record.to_bytes(), key, ack)
            return
        if self.recent.seen_before(question.question_id):
            self.counters.duplicates += 1
            log.info("duplicate question_id skipped", extra={"question_id": str(question.question_id)})
            await ack()
            return
        self.counters.accepted += 1
        cluster = ClusterKey(service=question.service, user_id=question.user_id)
        pending = Pending(question, now_ms(), ack, self._rejection(question))
        await self.batcher.wait_for_room(self.settings.max_buffered_questions)
        await self.batcher.add(cluster, pending, payload_bytes(question))

    def _rejection(self, question: Question) -> Rejection | None:
        """Safety gate first, then the service's quota; a refusal still travels to a
        worker, which answers it `rejected` with this reason (never a silent drop)."""
        hit = self.rules.check_question(question.text)
        if hit is not None:
            self.counters.blocked += 1
            log.warning("question blocked", extra={"question_id": str(question.question_id), "rule": hit.rule})
            return Rejection(rule=hit.rule, reason=hit.reason)
        if not self.quotas.allow(question.service):
            self.counters.over_quota += 1
            log.warning("over quota", extra={"question_id": str(question.question_id), "service": question.service})
            return Rejection(rule="quota", reason=f"service {question.service!r} is over its quota; retry later")
        return None

    async def _emit(self, cluster: ClusterKey, items: list[Pending], trigger: Trigger) -> None:
        batch = Batch(
            batch_id=uuid.uuid4(),
            cluster_key=cluster,
            trigger=trigger,
            questions=[
                BatchedQuestion(question=p.question, ingested_ts=p.ingested_ts, rejection=p.rejection) for p in items
            ],
            created_ts=now_ms(),
        )
        self.counters.batches += 1
        acks = [p.ack for p in items]

        async def ack_all() -> None:
            for ack in acks:
                await ack()

        log.debug("batch emitted", extra={"batch_id": str(batch.batch_id), "size": len(items), "trigger": trigger})
        # Without a router the key decides the partition; with one, bounded-load hashing does.
        partition = (
            self.router.choose(f"{cluster.service}/{cluster.user_id}", weight=len(items)) if self.router else None
        )
        await self.sink.send_then(self.batch_topic, batch.to_bytes(), cluster.as_key(), ack_all, partition)
