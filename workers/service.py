"""The batch worker: consume `batches`, answer each with one reasoner call, deliver, commit.

Delivery order for one batch (docs/design.md, "Delivery: nothing lost, nothing doubled"):
1. the reasoner answers the whole batch in one call (in a thread, so heartbeats go on);
   batches polled together share that call, which amortises the fixed cost per call
   (and a busy worker polls again for a while first, to share the call among more
   questions: `workers.linger`, its window learnt per load level by `workers.linger_control`);
   while it reasons, earlier polls' steps 2-4 run (a two-stage pipeline: CPU for one
   poll overlaps I/O for those before; `workers.outbox` delivers every poll that waits
   in one step 2-4, in poll order, so I/O does not fall behind as load grows);
2. rows are claimed in PostgreSQL keyed by question_id, in one statement (retrying while
   the database is down); the first batch to answer a question owns its row (its question
   text scrubbed of personal data: `schemas.rows.answer_row`);
3. answers this batch owns are produced to `answers` (acks=all, idempotent) and awaited;
4. only then is the batch's offset committed; with `AUTOGLM_WORKER_TRANSACTIONS` (default)
   steps 3 and 4 are one Kafka transaction per source partition, on that partition's own
   transactional producer (`workers.delivery`), so read_committed consumers see each answer
   once and a worker that lost a partition without knowing it is fenced.
   In a rebalance, partitions are handed over only after every poll taken is committed
   (`workers.handover`), so the next owner does not redo what this worker finished.
A crash anywhere before 4 redelivers the batch; step 2 finds its own rows and step 3
re-produces them, so the table never holds a duplicate and no answer is lost.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import asyncpg
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from pydantic import ValidationError

from reasoning.reasoner import Reasoned, Reasoner
from runtime.db import claim_rows, create_pool
from runtime.health import Heartbeat, serve_health
from runtime.kafka_config import consumer_config, producer_config
from schemas.answer import Answer, ModelInfo
from schemas.batch import Batch
from schemas.question import Question
from schemas.rows import CLAIM_ANSWERS, answer_row
from schemas.safety import rules_from_settings
from schemas.settings import Settings
from schemas.topics import BATCHES, QUESTIONS_DLQ, topic_name
from schemas.wire import WireError, dead_letter
from workers.answers import build_answers, error_results, handed_over, now_ms
from workers.delivery import Delivery
from workers.handover import Handover
from workers.linger import Linger
from workers.linger_control import LingerController
from workers.outbox import Outbox
from workers.splitting import answer_within_budget
from workers.status import LoadMeter, publish_status

log = logging.getLogger(__name__)

CLAIMED_LOG = "rows claimed"  # the message of the log line that lists a claim's inserted rows


class BatchWorker:
    """One member of the worker consumer group."""

    def __init__(self, settings: Settings, reasoner: Reasoner) -> None:
        self.settings = settings
        self.reasoner = reasoner
        self.model = ModelInfo(name=reasoner.name, version=reasoner.version)
        self.client_id = f"autoglm-worker-{os.getpid()}"
        self.executor: ThreadPoolExecutor | None = None  # one per run(): a reasoner call at a time
        self.answered = 0
        self.batches = 0
        self.withheld = 0
        self.deliveries = 0  # delivery steps; fewer than polls when polls wait and go together
        self.claimed = 0  # answer rows this process inserted (claims won; a redelivery finds its own)
        self.meter = LoadMeter()
        self.node_id = f"{settings.worker_group_id}-{settings.worker_instance}"
        self.ready = False
        self.heartbeat = Heartbeat(stale_s=settings.db_retry_max_s + 300)
        self.rules = rules_from_settings(settings)
        # adaptive: a bandit picks the window per load level (0 included), so no rate gate
        self.linger_control = (
            LingerController(settings.latency_target_p99_ms, start_ms=settings.worker_linger_ms)
            if settings.worker_linger_adaptive
            else None
        )
        self.linger = Linger(
            settings.worker_linger_ms / 1000,
            settings.worker_linger_questions,
            0.0 if self.linger_control else settings.worker_linger_min_qps,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set, then finish the batches in hand and leave the group.

        Raises KafkaError when the broker is lost beyond the clients' retries; nothing is
        committed then, and `workers.main` calls run() again with new clients."""
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reasoner")
        consumer = AIOKafkaConsumer(**consumer_config(self.settings, self.settings.worker_group_id, self.client_id))
        delivery = Delivery(self.settings, self.client_id, consumer)
        handover = Handover(consumer, delivery)
        consumer.subscribe([topic_name(self.settings, BATCHES)], listener=handover)
        pool = await create_pool(self.settings.dsn)
        await delivery.start()
        await consumer.start()
        health = await self._serve_health()
        status = asyncio.create_task(
            publish_status(
                self.settings, self.node_id, consumer, self.meter, getattr(self.reasoner, "cache_stats", dict)
            )
        )
        self.ready = True
        log.info("worker started", extra={"client_id": self.client_id, "model": self.model.name})

        async def deliver(polls: list[Polled]) -> None:
            try:
                await self._deliver_polls(polls, delivery, pool)
            finally:
                for _ in polls:
                    handover.delivered()

        outbox: Outbox[Polled] = Outbox(deliver, self.settings.worker_max_waiting_polls)
        try:
            while not stop.is_set():
                self.heartbeat.beat()
                self._adapt_linger()
                polled = await consumer.getmany(timeout_ms=200, max_records=self.settings.worker_max_batches)
                if not any(polled.values()):
                    outbox.raise_if_failed()
                    continue
                handover.taken()
                batches, offsets = await self._gather(consumer, polled)
                began = time.monotonic()
                answers = await self._prepare(batches)  # reasons while earlier polls deliver
                await outbox.put(Polled(answers, offsets))
                self.meter.record(time.monotonic() - began)
            await outbox.drain()
        finally:
            await outbox.close()  # on an error, what was not delivered is redelivered
            handover.abandon()
            self.ready = False
            status.cancel()
            await consumer.stop()  # leaves the group now, so partitions move at once
            await delivery.close()
            await pool.close()
            if health is not None:
                await health.cleanup()
            await asyncio.to_thread(self.executor.shutdown, True)  # a call still running ends first

    def _adapt_linger(self) -> None:
        """With `AUTOGLM_WORKER_LINGER_ADAPTIVE`, let the controller set the linger window."""
        if self.linger_control is not None:
            now = time.monotonic()
            self.linger_control.tick(now, self.linger.rate(now))
            self.linger.window_s = self.linger_control.window_s

    async def _serve_health(self) -> web.AppRunner | None:
        if not self.settings.health_port:
            return None
        counters = lambda: {
            "batches": self.batches,
            "answered": self.answered,
            "withheld": self.withheld,  # noqa: E731
            "claimed": self.claimed,
            "linger": self.linger_control.snapshot() if self.linger_control else None,
        }
        return await serve_health(
            self.settings.health_port, "worker", self.heartbeat.alive, lambda: self.ready, counters
        )

    async def _gather(
        self, consumer: AIOKafkaConsumer, polled: dict[TopicPartition, list[ConsumerRecord]]
    ) -> tuple[list[tuple[TopicPartition, Batch]], dict[TopicPartition, int]]:
        """The polled batches, plus those of further polls while `workers.linger` says to
        wait, and each partition's next offset after all of them."""
        first = time.monotonic()
        batches: list[tuple[TopicPartition, Batch]] = []
        offsets: dict[TopicPartition, int] = {}
        taken = in_hand = 0
        while True:
            arrived = 0
            for tp, recs in polled.items():
                offsets[tp] = recs[-1].offset + 1  # polls of one partition come in offset order
                taken += len(recs)
                for record in recs:
                    batch = await self._decode(record)
                    if batch is not None:
                        batches.append((tp, batch))
                        arrived += len(batch.questions)
            in_hand += arrived
            now = time.monotonic()
            self.linger.observe(arrived, now)
            wait = self.linger.wait_s(in_hand, first, now)
            room = self.settings.worker_max_batches - taken
            if wait <= 0 or room <= 0:
                return batches, offsets
            polled = await consumer.getmany(timeout_ms=max(1, round(wait * 1000)), max_records=room)
            if not polled:
                return batches, offsets

    async def _prepare(self, batches: list[tuple[TopicPartition, Batch]]) -> list[tuple[TopicPartition, Answer]]:
        """Answers for the polled batches (one reasoner call over all their questions), each
        with the partition its batch came from: that partition's transaction delivers it."""
        if not batches:
            return []
        started = now_ms()
        results = await self._reason([b for _, b in batches])
        finished = now_ms()
        answers: list[tuple[TopicPartition, Answer]] = []
        for tp, batch in batches:
            mine, results = results[: len(batch.questions)], results[len(batch.questions) :]
            answers += [(tp, a) for a in build_answers(batch, mine, self.model, started, finished)]
        self.batches += len(batches)
        log.debug(
            "batches answered", extra={"batch_ids": [str(b.batch_id) for _, b in batches], "answers": len(answers)}
        )
        return answers

    async def _deliver_polls(self, polls: list[Polled], delivery: Delivery, pool: asyncpg.Pool) -> None:
        """Rows first (the first batch to answer a question owns it), then the answers these
        polls own and their offsets, one transaction per source partition."""
        answers = [pair for poll in polls for pair in poll.answers]
        offsets: dict[TopicPartition, int] = {}
        for poll in polls:  # in poll order: a later poll's offset is the higher one
            offsets.update(poll.offsets)
        grouped: dict[TopicPartition, list[Answer]] = {}
        if answers:
            # in a thread: scrubbing personal data from a hostile question text costs up to
            # ~60 ms (schemas.privacy), which must not stall this loop's heartbeats
            rows = await asyncio.to_thread(rows_to_claim, [a for _, a in answers], now_ms())
            claim = await claim_rows(pool, CLAIM_ANSWERS, rows)
            self._claimed(claim.won)
            for tp, a in answers:
                if claim.owners.get(a.question_id) == a.batch_id:
                    grouped.setdefault(tp, []).append(a)
        self.answered += await delivery.deliver(grouped, offsets)
        self.deliveries += 1
        if self.linger_control is not None:
            committed = now_ms()
            self.linger_control.observe([committed - a.question_ts for group in grouped.values() for a in group])

    def _claimed(self, won: list) -> None:
        """Count and log the rows this delivery's claim inserted, by question id, as soon as the
        claim returns: the chaos suite and the end-to-end tests count each question's won
        claims from these lines (a row is won once, however often its question is delivered)."""
        if won:
            self.claimed += len(won)
            log.info(CLAIMED_LOG, extra={"question_ids": [str(q) for q in won]})

    async def _decode(self, record: ConsumerRecord) -> Batch | None:
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
            assert self.executor is not None, "run() creates the executor"
            # one call, or one per chunk when over AUTOGLM_MAX_BATCH_COST (workers.splitting; a
            # reasoner in its own process splits there, since only it can estimate the cost)
            results = await loop.run_in_executor(
                self.executor, answer_within_budget, self.reasoner, questions, self.settings.max_batch_cost
            )
            if len(results) != len(questions):
                raise RuntimeError(f"reasoner returned {len(results)} results for {len(questions)} questions")
            return results
        except Exception as exc:  # a reasoner bug must not stall the partition
            log.exception("reasoner failed", extra={"batch_ids": [str(b.batch_id) for b in batches]})
            return error_results(len(questions), f"reasoner failed: {type(exc).__name__}: {exc}"[:500])

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


def rows_to_claim(answers: list[Answer], at_ms: int) -> list[tuple]:
    """The PostgreSQL rows a delivery claims: latency up to the claim at `at_ms` (the topic's
    answers carry it up to production) and question text scrubbed (`schemas.rows.answer_row`)."""
    return [answer_row(handed_over(a, at_ms)) for a in answers]


@dataclass(frozen=True)
class Polled:
    """One poll's answers (each with the partition its batch came from) and its next offsets."""

    answers: list[tuple[TopicPartition, Answer]]
    offsets: dict[TopicPartition, int]
