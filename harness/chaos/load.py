"""Offered load: MetaQA qa_val questions from random users and services, at a steady rate.

What counts as sent is what the broker acknowledged (acks=all). A send that fails (the
broker is restarting) is sent again with the same question_id, as any well-behaved client
would: the pipeline must answer it once however many times it arrives.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer

from reasoning.metaqa import qa_file
from runtime.kafka_config import producer_config
from schemas.question import Question
from schemas.settings import Settings
from schemas.topics import QUESTIONS, topic_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ask:
    """One question to send: the id is fixed, the timestamp is taken when it is sent."""

    question_id: uuid.UUID
    service: str
    user_id: str
    text: str

    def to_bytes(self) -> bytes:
        ts = int(time.time() * 1000)
        q = Question(question_id=self.question_id, service=self.service, user_id=self.user_id, text=self.text, ts=ts)
        return q.to_bytes()


def metaqa_asks(n: int, seed: int, services: int = 3, users: int = 50) -> list[Ask]:
    """n questions mixed over 1-, 2- and 3-hop qa_val (cycled when n exceeds the file).

    Texts, users and services follow `seed`; ids are fresh every time, because the answers
    table outlives a run and an id answered before would (rightly) not be answered again."""
    lines: list[str] = []
    for hop in (1, 2, 3):
        lines += [line.split("\t")[0] for line in qa_file(hop, "val").read_text().splitlines() if line]
    rng = random.Random(seed)
    rng.shuffle(lines)
    return [
        Ask(uuid.uuid4(), f"svc-{rng.randrange(services)}", f"user-{rng.randrange(users)}", lines[i % len(lines)])
        for i in range(n)
    ]


@dataclass
class Sender:
    """Sends asks at `rate` per second; records when each was first offered and acknowledged.

    A send not acknowledged within `ack_timeout_s` is retried on a fresh producer: after a
    broker restart an aiokafka producer can stay stuck (its sender task dead), and a load
    generator that hangs would hide whether the pipeline recovers."""

    settings: Settings
    rate: float
    ack_timeout_s: float = 30.0
    offered_at: dict[uuid.UUID, float] = field(default_factory=dict)  # wall time of first send
    acked: set[uuid.UUID] = field(default_factory=set)
    resends: int = 0
    producers: int = 0  # how many producers it took
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, asks: list[Ask]) -> None:
        """Send every ask at the steady rate, then wait until all are acknowledged."""
        self._producer: AIOKafkaProducer | None = None
        self._replacing: asyncio.Lock = asyncio.Lock()
        topic = topic_name(self.settings, QUESTIONS)
        pending: set[asyncio.Task[None]] = set()
        t0 = time.monotonic()
        try:
            await self._fresh_producer(None)
            for i, ask in enumerate(asks):
                delay = t0 + i / self.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                self.offered_at[ask.question_id] = time.time()
                task = asyncio.create_task(self._deliver(topic, ask))
                pending.add(task)
                task.add_done_callback(pending.discard)
            if pending:
                await asyncio.gather(*list(pending))
        finally:
            for task in pending:
                task.cancel()
            if self._producer is not None:
                await self._stop_quietly(self._producer)
            self.done.set()

    async def _fresh_producer(self, broken: AIOKafkaProducer | None) -> AIOKafkaProducer:
        """The current producer, replaced first if it is still `broken` (once per failure)."""
        async with self._replacing:
            if self._producer is not None and self._producer is not broken:
                return self._producer
            if broken is not None:
                asyncio.create_task(self._stop_quietly(broken))
            config = {**producer_config(self.settings, "autoglm-chaos-load"), "request_timeout_ms": 20_000}
            for _ in range(120):
                producer = AIOKafkaProducer(**config)
                try:
                    await producer.start()
                    break
                except Exception as exc:  # noqa: BLE001 - broker briefly unavailable
                    log.info("load producer cannot start yet: %r", exc)
                    await self._stop_quietly(producer)
                    await asyncio.sleep(1.0)
            else:
                raise RuntimeError("the load producer could not reach Kafka for two minutes")
            self._producer = producer
            self.producers += 1
            return producer

    @staticmethod
    async def _stop_quietly(producer: AIOKafkaProducer) -> None:
        try:
            await asyncio.wait_for(producer.stop(), 10)
        except Exception as exc:  # noqa: BLE001 - it is being thrown away
            log.debug("discarded producer did not stop cleanly: %r", exc)

    async def _deliver(self, topic: str, ask: Ask) -> None:
        """Send until acknowledged (same question_id every time)."""
        while True:
            producer = self._producer
            assert producer is not None
            try:
                fut = await asyncio.wait_for(
                    producer.send(topic, ask.to_bytes(), key=ask.user_id.encode()), self.ack_timeout_s
                )
                await asyncio.wait_for(fut, self.ack_timeout_s)
                self.acked.add(ask.question_id)
                return
            except Exception as exc:  # noqa: BLE001 - timeouts and disconnects while the broker restarts
                self.resends += 1
                log.info("resending %s after %r", ask.question_id, exc)
                await asyncio.sleep(0.5)
                await self._fresh_producer(producer)

    @property
    def offered(self) -> int:
        return len(self.offered_at)

    def offered_before(self, t: float) -> list[uuid.UUID]:
        return [qid for qid, at in self.offered_at.items() if at < t]
