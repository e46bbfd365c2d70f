"""Baseline (a): the per-message loop people write by hand with aiokafka.

Consume one question, answer it with one reasoner call, produce the answer, next. The
produce is not awaited per message and offsets are auto-committed, which is the
common (and the fastest) way to write it; the reasoner runs in a thread, as in the worker.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from harness.bench.replies import replies
from reasoning.reasoner import Reasoner
from runtime.clock import now_ms
from runtime.kafka_config import consumer_config, producer_config
from schemas.answer import ModelInfo
from schemas.question import Question
from schemas.settings import Settings
from schemas.topics import ANSWERS, QUESTIONS, topic_name
from schemas.wire import WireError, decode

log = logging.getLogger(__name__)


async def serve(settings: Settings, reasoner: Reasoner, stop: asyncio.Event) -> None:
    """Answer questions one at a time until `stop` is set."""
    group = settings.worker_group_id
    config = {
        **consumer_config(settings, group, f"{group}-consumer"),
        "enable_auto_commit": True,
        "auto_commit_interval_ms": 1000,
    }
    consumer = AIOKafkaConsumer(topic_name(settings, QUESTIONS), **config)
    producer = AIOKafkaProducer(**producer_config(settings, f"{group}-producer"))
    answers_topic = topic_name(settings, ANSWERS)
    model = ModelInfo(name=reasoner.name, version=reasoner.version)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reasoner")
    loop = asyncio.get_running_loop()
    await producer.start()
    await consumer.start()
    try:
        while not stop.is_set():
            polled = await consumer.getmany(timeout_ms=200, max_records=1)
            for records in polled.values():
                for record in records:
                    consumed = now_ms()
                    try:
                        question = decode(record.value, Question, settings.max_payload_bytes)
                    except WireError as exc:
                        log.warning("skipped a bad record: %s", exc.error_class)
                        continue
                    started = now_ms()
                    results = await loop.run_in_executor(executor, reasoner.answer_batch, [question])
                    answer = replies([question], consumed, results, model, started, now_ms())[0]
                    await producer.send(answers_topic, answer.to_bytes(), key=question.user_id.encode())
    finally:
        await consumer.stop()
        await producer.stop()
        executor.shutdown(wait=False)
