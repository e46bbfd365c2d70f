"""A small Kafka client for people: ask questions, send files, read answers.

What any producer/consumer of the public topics would do; nothing here is privileged.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from tqdm import tqdm

from runtime.clock import now_ms
from runtime.kafka_config import producer_config
from runtime.tail import open_tail, records
from schemas.answer import Answer
from schemas.question import Question
from schemas.settings import Settings
from schemas.topics import ANSWERS, QUESTIONS, topic_name


@dataclass(frozen=True)
class MetaQAItem:
    """One line of a MetaQA file: the question text and its gold answers."""

    text: str
    gold: list[str]


def read_metaqa(path: Path, limit: int | None = None, raw_text: bool = False) -> list[MetaQAItem]:
    """Read `question<TAB>answer|answer...` lines (gzip or plain)."""
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    items: list[MetaQAItem] = []
    with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
        for line in fh:
            if not line.strip():
                continue
            text, _, answers = line.rstrip("\n").partition("\t")
            if raw_text:
                text = text.replace("[", "").replace("]", "")
            items.append(MetaQAItem(text=text, gold=[a for a in answers.split("|") if a]))
            if limit is not None and len(items) >= limit:
                break
    return items


async def answers_tail(settings: Settings) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
    """A group-less consumer positioned at the current end of `answers` (runtime.tail)."""
    return await open_tail(settings, topic_name(settings, ANSWERS), "latest", "autoglm-cli")


async def stream_answers(consumer: AIOKafkaConsumer) -> AsyncIterator[Answer]:
    """Yield answers as they arrive."""
    async for polled in records(consumer):
        for rec in polled:
            yield Answer.from_bytes(rec.value)


async def send_questions(
    settings: Settings, questions: Iterable[Question], progress: bool = False, total: int | None = None
) -> int:
    """Produce questions keyed by user_id with acks=all; returns how many were sent."""
    producer = AIOKafkaProducer(**producer_config(settings, "autoglm-cli"))
    await producer.start()
    topic = topic_name(settings, QUESTIONS)
    sent = 0
    try:
        futures = []
        for q in tqdm(questions, total=total, disable=not progress, unit="q"):
            futures.append(await producer.send(topic, q.to_bytes(), key=q.user_id.encode()))
            sent += 1
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return sent


def make_question(text: str, service: str, user_id: str, topic_entity: str | None = None) -> Question:
    return Question(
        question_id=uuid.uuid4(), service=service, user_id=user_id, text=text, ts=now_ms(), topic_entity=topic_entity
    )


def spread_users(items: list[MetaQAItem], services: int, users: int, seed: int = 7) -> list[Question]:
    """Questions from `items`, spread over several services and users (deterministically)."""
    rng = random.Random(seed)
    return [make_question(it.text, f"svc-{rng.randrange(services)}", f"user-{rng.randrange(users)}") for it in items]


async def ask(settings: Settings, text: str, service: str, user_id: str, timeout_s: float) -> Answer:
    """Produce one question and wait for its answer."""
    consumer, _ = await answers_tail(settings)
    try:
        question = make_question(text, service, user_id)
        await send_questions(settings, [question])

        async def wait() -> Answer:
            async for answer in stream_answers(consumer):
                if answer.question_id == question.question_id:
                    return answer
            raise RuntimeError("answers stream ended")

        try:
            return await asyncio.wait_for(wait(), timeout=timeout_s)
        except TimeoutError:
            raise TimeoutError(
                f"no answer within {timeout_s:.0f}s: is the pipeline running? start it with `autoglm run`"
            ) from None
    finally:
        await consumer.stop()
