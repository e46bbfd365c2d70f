"""Fixtures: the real Kafka and PostgreSQL (started by `autoglm up`), isolated topics per
test, and the pipeline as real child processes.

Isolation: every test gets its own topic prefix, stream app id and worker group, so tests
share one broker and one database without seeing each other's records.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from confluent_kafka import Consumer, Producer

from harness.isolation import isolate
from runtime.fleet import Fleet
from schemas.settings import Settings, get_settings

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def services() -> Settings:
    """Kafka and PostgreSQL up (idempotent: reuses what runs), topics and migrations in place."""
    from runtime.services import up

    settings = get_settings()
    up(settings)
    return settings


@pytest.fixture
def isolated(services: Settings, request: pytest.FixtureRequest) -> Iterator[Settings]:
    """Settings with a private topic prefix, app id and group id; topics created, and
    deleted after the test (the suite used to leave ~100 topics per run on the broker)."""
    from runtime.services.kafka import delete_topics, ensure_topics

    settings = isolate(services, "t", partitions=3)
    ensure_topics(settings)
    yield settings
    delete_topics(settings)


Pipeline = Fleet  # the stream processor and workers as real processes, for one test


@pytest.fixture
def pipeline(isolated: Settings, tmp_path: Path) -> Iterator[Pipeline]:
    pipe = Fleet(isolated, tmp_path)
    yield pipe
    pipe.stop_all()


# --- a Kafka client that is not ours: confluent-kafka (librdkafka) -------------------------


def foreign_producer(settings: Settings) -> Producer:
    return Producer({"bootstrap.servers": settings.kafka_bootstrap_servers, "enable.idempotence": True, "acks": "all"})


def produce_raw(settings: Settings, topic: str, records: list[tuple[bytes | None, bytes | None]]) -> None:
    """Produce raw (key, value) pairs with librdkafka and wait for every delivery."""
    producer = foreign_producer(settings)
    errors: list[str] = []

    def report(err, msg) -> None:  # noqa: ANN001
        if err is not None:
            errors.append(str(err))

    for key, value in records:
        producer.produce(topic, value=value, key=key, on_delivery=report)
        producer.poll(0)
    assert producer.flush(30) == 0, "records were not delivered"
    assert not errors, errors


def read_topic(settings: Settings, topic: str, expect: int, timeout_s: float = 120.0) -> list:
    """Read `topic` from the beginning with librdkafka until `expect` records or the timeout.

    After reaching `expect` it keeps reading a little longer, so duplicates would show.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([topic])
    out: list = []
    deadline = time.monotonic() + timeout_s
    settle_until: float | None = None
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                out.append(msg)
            if len(out) >= expect and settle_until is None:
                settle_until = time.monotonic() + 3.0
            if settle_until is not None and time.monotonic() > settle_until:
                break
    finally:
        consumer.close()
    return out


async def count_rows(settings: Settings, table: str, ids: list[uuid.UUID]) -> int:
    conn = await asyncpg.connect(settings.dsn)
    try:
        key = "question_id"
        return await conn.fetchval(f"SELECT count(*) FROM {table} WHERE {key} = ANY($1::uuid[])", ids)
    finally:
        await conn.close()


def rows(settings: Settings, table: str, ids: list[uuid.UUID]) -> int:
    return asyncio.run(count_rows(settings, table, ids))
