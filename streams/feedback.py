"""Feedback ingest: validate, dead-letter the bad, scrub personal data, upsert into PostgreSQL.

The source record is acknowledged after the row is written (or the dead letter is
produced), so a crash can only cause a re-write of the same row, keyed by feedback_id.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import asyncpg

from runtime.db import executemany_with_retry
from schemas.feedback import Feedback
from schemas.privacy import scrub_feedback
from schemas.rows import UPSERT_FEEDBACK, feedback_row
from schemas.settings import Settings
from schemas.topics import FEEDBACK, FEEDBACK_DLQ, topic_name
from schemas.wire import WireError, dead_letter, decode
from streams.sink import DeliverySink

log = logging.getLogger(__name__)

Ack = Callable[[], Awaitable[None]]


class FeedbackIngest:
    """Turns feedback records into rows of the `feedback` table."""

    def __init__(self, settings: Settings, sink: DeliverySink, pool: asyncpg.Pool) -> None:
        self.settings = settings
        self.sink = sink
        self.pool = pool
        self.source_topic = topic_name(settings, FEEDBACK)
        self.dlq_topic = topic_name(settings, FEEDBACK_DLQ)
        self.stored = 0
        self.dead_lettered = 0

    async def handle(self, key: bytes | None, value: bytes | None, partition: int, offset: int, ack: Ack) -> None:
        """Process one feedback record. Never raises on bad input."""
        try:
            feedback = decode(value, Feedback, self.settings.max_payload_bytes)
        except WireError as err:
            self.dead_lettered += 1
            log.warning("feedback dead-lettered", extra={"error_class": err.error_class, "offset": offset})
            record = dead_letter(value, key, err, self.source_topic, partition, offset)
            await self.sink.send_then(self.dlq_topic, record.to_bytes(), key, ack)
            return
        # Comments and corrections are free text: no email, phone, card or IP reaches a table.
        row = feedback_row(scrub_feedback(feedback), self.source_topic, partition, offset)
        await executemany_with_retry(self.pool, UPSERT_FEEDBACK, [row])
        self.stored += 1
        await ack()
