"""The stream processor's Faust consumer waits at most the configured time for a fetch.

faust-streaming 0.15 gives aiokafka a fixed fetch_max_wait_ms of 1,500 ms; with the idle
`feedback` partitions in the same fetch, that stalled the questions topic for ~1.6 s under
load (streams/faust_transport.py). This checks the consumer Faust builds for our app, the
one its consumer thread starts, carries `kafka_fetch_max_wait_ms` instead."""

from __future__ import annotations

from runtime.kafka_config import consumer_config
from schemas.settings import Settings
from streams.app import create_app
from streams.faust_transport import ConsumerThread


async def test_the_apps_kafka_consumer_uses_the_configured_fetch_wait() -> None:
    settings = Settings(kafka_fetch_max_wait_ms=37, kafka_fetch_min_bytes=4096)
    app = create_app(settings)
    thread = app.consumer._new_consumer_thread()
    assert isinstance(thread, ConsumerThread)
    consumer = thread._create_worker_consumer(app.transport)
    try:
        assert consumer._fetch_max_wait_ms == 37  # what aiokafka's fetcher reads when it starts
        assert consumer._fetch_min_bytes == 4096
    finally:
        await consumer.stop()


def test_our_own_consumers_use_the_same_fetch_wait() -> None:
    config = consumer_config(Settings(kafka_fetch_max_wait_ms=37, kafka_fetch_min_bytes=4096), "group", "client")
    assert config["fetch_max_wait_ms"] == 37
    assert config["fetch_min_bytes"] == 4096
