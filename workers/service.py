"""The batch worker: consume `batches`, answer each with one reasoner call, deliver, commit.

Delivery order for one batch (DESIGN.md, delivery rules):
1. the reasoner answers the whole batch in one call (in a thread, so heartbeats go on);
   batches polled together share that call, which amortises the fixed cost per call;
2. rows are inserted into PostgreSQL keyed by question_id (retrying while the database is
   down); the first batch to answer a question owns its row;
3. answers this batch owns are produced to `answers` (acks=all, idempotent) and awaited;
4. only then is the batch's offset committed; with `AUTOGLM_WORKER_TRANSACTIONS` (default)
   steps 3 and 4 are one Kafka transaction, so read_committed consumers see each answer once.
A crash anywhere before 4 redelivers the batch; step 2 finds its own rows and step 3
re-produces them, so the table never holds a duplicate and no answer is lost.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError
from pydantic import ValidationError

from aiohttp import web
from autoglm.db import create_pool, executemany_with_retry, fetch_with_retry
from autoglm.health import Heartbeat, serve_health
from schemas.answer import Answer, ModelInfo
from schemas.batch import Batch
from schemas.question import Question
from schemas.safety import rules_from_settings
from schemas.kafka_config import consumer_config, producer_config
from schemas.rows import INSERT_ANSWER, SELECT_OWNERS, answer_row
from schemas.settings import Settings
from schemas.topics import ANSWERS, BATCHES, QUESTIONS_DLQ, topic_name
from schemas.wire import WireError, dead_letter
from workers.answers import build_answers, error_results, now_ms
from workers.reasoner import Reasoned, Reasoner
from workers.splitting import split_by_cost
from workers.status import LoadMeter, publish_status

log = logging.getLogger(__name__)


class BatchWorker:
    """One member of the worker consumer group."""

    def __init__(self, settings: Settings, reasoner: Reasoner) -> None:
        self.settings = settings
        self.reasoner = reasoner
        self.model = ModelInfo(name=reasoner.name, version=reasoner.version)
        self.client_id = f"autoglm-worker-{os.getpid()}"
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reasoner")
        self.answered = 0
        self.batches = 0
        self.withheld = 0
        self.chunks = 0
        self.meter = LoadMeter()
        self.node_id = f"{settings.worker_group_id}-{settings.worker_instance}"
        self.ready = False
        self.heartbeat = Heartbeat(stale_s=settings.db_retry_max_s + 300)
        self.rules = rules_from_settings(settings)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set, then finish the batches in hand and leave the group."""
        consumer = AIOKafkaConsumer(
            topic_name(self.settings, BATCHES),
            **consumer_config(self.settings, self.settings.worker_group_id, self.client_id),
        )
        producer = AIOKafkaProducer(**self._producer_config())
        pool = await create_pool(self.settings.dsn)
        await producer.start()
        await consumer.start()
        health = await self._serve_health()
        status = asyncio.create_task(publish_status(self.settings, self.node_id, consumer, self.meter))
        self.ready = True
        log.info("worker started", extra={"client_id": self.client_id, "model": self.model.name})
        try:
            while not stop.is_set():
                self.heartbeat.beat()
                polled = await consumer.getmany(timeout_ms=200, max_records=self.settings.worker_max_batches)
                records = [r for recs in polled.values() for r in recs]
                if not records:
                    continue
                offsets = {tp: recs[-1].offset + 1 for tp, recs in polled.items()}
                began = time.monotonic()
                await self._process(records, producer, pool, offsets, consumer)
                self.meter.record(time.monotonic() - began)
        finally:
            self.ready = False
            status.cancel()
            await consumer.stop()  # leaves the group now, so partitions move at once
            await producer.stop()
            await pool.close()
            if health is not None:
                await health.cleanup()
            self.executor.shutdown(wait=False)

    async def _serve_health(self) -> web.AppRunner | None:
        if not self.settings.health_port:
            return None
        counters = lambda: {"batches": self.batches, "answered": self.answered, "withheld": self.withheld}  # noqa: E731
        return await serve_health(self.settings.health_port, "worker", self.heartbeat.alive, lambda: self.ready, counters)

    def _producer_config(self) -> dict:
        """With transactions, a stable transactional id per worker slot fences a restarted
        worker's predecessor (its open transaction is aborted at once)."""
        config = producer_config(self.settings, self.client_id)
        if self.settings.worker_transactions:
            config["transactional_id"] = f"{self.settings.worker_group_id}-{self.settings.worker_instance}"
            config["transaction_timeout_ms"] = self.settings.transaction_timeout_ms
        return config

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        try:
            await consumer.commit(offsets)
        except CommitFailedError as exc:  # partition moved in a rebalance: its new owner redoes it
            log.warning("commit failed after rebalance, batch will be redelivered: %r", exc)

    async def _deliver(
        self, producer: AIOKafkaProducer, answers: list[Answer], offsets: dict[TopicPartition, int],
        consumer: AIOKafkaConsumer,
    ) -> None:
        """Produce answers and commit offsets: one Kafka transaction when enabled, so a
        read_committed consumer sees each answer once; otherwise produce, await, commit."""
        if not self.settings.worker_transactions:
            await self._produce(producer, answers)
            await self._commit(consumer, offsets)
            return
        try:
            async with producer.transaction():
                await self._produce(producer, answers)
                await producer.send_offsets_to_transaction(offsets, self.settings.worker_group_id)
        except CommitFailedError as exc:
            log.warning("transaction not committed after rebalance, batches will be redelivered: %r", exc)

    async def _process(
        self, records: list[ConsumerRecord], producer: AIOKafkaProducer, pool: asyncpg.Pool,
        offsets: dict[TopicPartition, int], consumer: AIOKafkaConsumer,
    ) -> None:
        """Answer the polled batches: one reasoner call over all their questions, one
        database transaction, one round of produces."""
        batches = [b for b in [await self._decode(r, producer) for r in records] if b is not None]
        if not batches:
            await self._deliver(producer, [], offsets, consumer)
            return
        started = now_ms()
        results = await self._reason(batches)
        finished = now_ms()
        answers: list[Answer] = []
        for batch in batches:
            mine, results = results[: len(batch.questions)], results[len(batch.questions) :]
            answers += build_answers(batch, mine, self.model, started, finished)
        await executemany_with_retry(pool, INSERT_ANSWER, [answer_row(a) for a in answers])
        owners = await fetch_with_retry(pool, SELECT_OWNERS, [a.question_id for a in answers])
        owned = [a for a in answers if owners.get(a.question_id) == a.batch_id]
        await self._deliver(producer, owned, offsets, consumer)
        self.batches += len(batches)
        self.answered += len(owned)
        log.debug("batches answered", extra={"batch_ids": [str(b.batch_id) for b in batches], "answers": len(owned)})

    async def _decode(self, record: ConsumerRecord, producer: AIOKafkaProducer) -> Batch | None:
        """The batch in `record`, or None after dead-lettering an undecodable one."""
        try:
            return Batch.from_bytes(record.value)
        except (ValueError, ValidationError) as exc:
            err = WireError("schema_validation", f"undecodable batch: {exc}"[:2000])
            letter = dead_letter(record.value, record.key, err, record.topic, record.partition, record.offset)
            await self._dead_letter(letter.to_bytes())
            return None

    async def _dead_letter(self, value: bytes) -> None:
        """Dead letters go through their own plain producer: they must not wait for, or be
        rolled back with, the answers transaction."""
        producer = AIOKafkaProducer(**producer_config(self.settings, f"{self.client_id}-dlq"))
        await producer.start()
        try:
            await (await producer.send(topic_name(self.settings, QUESTIONS_DLQ), value))
        finally:
            await producer.stop()

    async def _reason(self, batches: list[Batch]) -> list[Reasoned]:
        """Results for every question of `batches`, in order: refused questions get their
        refusal, the rest one reasoner call, then the output compliance check."""
        items = [item for batch in batches for item in batch.questions]
        todo = [item.question for item in items if item.rejection is None]
        answered = iter(await self._answer(todo, batches))
        results = []
        for item in items:
            if item.rejection is not None:
                results.append(Reasoned(status="rejected", reason=item.rejection.reason))
            else:
                results.append(self._comply(next(answered), item.question))
        return results

    async def _answer(self, questions: list[Question], batches: list[Batch]) -> list[Reasoned]:
        if not questions:
            return []
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self.executor, self._answer_within_budget, questions)
            if len(results) != len(questions):
                raise RuntimeError(f"reasoner returned {len(results)} results for {len(questions)} questions")
            return results
        except Exception as exc:  # a reasoner bug must not stall the partition
            log.exception("reasoner failed", extra={"batch_ids": [str(b.batch_id) for b in batches]})
            return error_results(len(questions), f"reasoner failed: {type(exc).__name__}: {exc}"[:500])

    def _answer_within_budget(self, questions: list[Question]) -> list[Reasoned]:
        """One reasoner call, or several when the estimated cost exceeds the budget
        (`AUTOGLM_MAX_BATCH_COST`; reasoners that cannot estimate are never split)."""
        estimate = getattr(self.reasoner, "estimate_costs", None)
        if estimate is None or self.settings.max_batch_cost <= 0:
            return self.reasoner.answer_batch(questions)
        costs = estimate(questions)
        chunks = split_by_cost(questions, costs, [q.ts for q in questions], self.settings.max_batch_cost)
        self.chunks += len(chunks)
        results: list[Reasoned | None] = [None] * len(questions)
        for chunk in chunks:
            for i, result in zip(chunk, self.reasoner.answer_batch([questions[i] for i in chunk]), strict=True):
                results[i] = result
        return [r for r in results if r is not None]

    def _comply(self, result: Reasoned, question: Question) -> Reasoned:
        """Withhold an answer that breaks an output rule; say which rule."""
        if result.status != "ok":
            return result
        hit = self.rules.check_answer([e for e, _ in result.answers], result.sentence)
        if hit is None:
            return result
        self.withheld += 1
        log.warning("answer withheld", extra={"question_id": str(question.question_id), "rule": hit.rule})
        return Reasoned(status="rejected", topic_entity=result.topic_entity, reason=hit.reason)

    async def _produce(self, producer: AIOKafkaProducer, answers: list[Answer]) -> None:
        topic = topic_name(self.settings, ANSWERS)
        deliveries = [await producer.send(topic, a.to_bytes(), key=a.user_id.encode()) for a in answers]
        await asyncio.gather(*deliveries)
