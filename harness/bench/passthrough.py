"""The ceiling: raw Kafka pass-through, no model. Each question record is consumed and
produced again, unchanged, to the answers topic; the harness produces and consumes at the
ends, so a question travels produce -> consume -> produce -> consume, as in the systems."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from runtime.kafka_config import consumer_config, producer_config
from schemas.settings import Settings
from schemas.topics import ANSWERS, QUESTIONS, topic_name


async def relay(settings: Settings, stop: asyncio.Event) -> None:
    """Copy questions to answers until `stop` is set."""
    group = settings.worker_group_id
    config = {
        **consumer_config(settings, group, f"{group}-consumer"),
        "enable_auto_commit": True,
        "auto_commit_interval_ms": 1000,
    }
    consumer = AIOKafkaConsumer(topic_name(settings, QUESTIONS), **config)
    producer = AIOKafkaProducer(**producer_config(settings, f"{group}-producer"))
    answers_topic = topic_name(settings, ANSWERS)
    await producer.start()
    await consumer.start()
    try:
        while not stop.is_set():
            polled = await consumer.getmany(timeout_ms=200, max_records=2000)
            for records in polled.values():
                for record in records:
                    await producer.send(answers_topic, record.value, key=record.key)
    finally:
        await consumer.stop()
        await producer.stop()
