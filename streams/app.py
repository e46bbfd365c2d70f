"""The Faust application: two agents (questions, feedback) and the batch timer.

Faust owns consumption, group membership and offset commits; the agents switch its
automatic acknowledgement off (`stream.noack()`) and acknowledge each record only when
`Ingest` / `FeedbackIngest` say its effect is durable. Faust then commits, per partition,
the highest offset below which every record is acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust
import mode
from aiohttp import web

from runtime.db import create_pool
from runtime.faust_config import app_options
from runtime.health import serve_health
from runtime.heap import freeze_startup_objects
from schemas.settings import Settings
from schemas.topics import FEEDBACK, QUESTIONS, topic_name
from streams.controller import BatchController
from streams.faust_transport import Transport
from streams.feedback import FeedbackIngest
from streams.feeds import feed_latencies, feed_worker_status
from streams.ingest import Ingest
from streams.routing import BoundedLoadRouter
from streams.sink import DeliverySink

log = logging.getLogger(__name__)


class StreamState(mode.Service):
    """Producer, database pool and batcher timer, started and stopped with the app."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.sink = DeliverySink(settings, client_id=f"{settings.stream_app_id}-sink")
        self.controller = (
            BatchController(
                p99_target_ms=settings.latency_target_p99_ms,
                start=(settings.batch_window_ms / 1000, settings.batch_max_size),
            )
            if settings.adaptive_batching
            else None
        )
        self.router = (
            BoundedLoadRouter(settings.partitions, settings.routing_epsilon) if settings.load_aware_routing else None
        )
        self.ingest = Ingest(settings, self.sink, self.controller, self.router)
        self.feedback: FeedbackIngest | None = None
        self.ready = asyncio.Event()
        self.health: web.AppRunner | None = None

    async def on_start(self) -> None:
        await self.sink.start()
        pool = await create_pool(self.settings.dsn)
        self.feedback = FeedbackIngest(self.settings, self.sink, pool)
        if self.settings.health_port:
            self.health = await serve_health(
                self.settings.health_port, "streams", self._alive, self.ready.is_set, self._counters
            )
        freeze_startup_objects()
        self.ready.set()

    def _alive(self) -> bool:
        return self.sink.failed is None

    def _counters(self) -> dict:
        c = self.ingest.counters
        fb = self.feedback
        return {
            **c.__dict__,
            "buffered": self.ingest.batcher.buffered,
            "waits_skipped": self.ingest.batcher.skipped_waits,
            "controller": self.controller.snapshot() if self.controller else None,
            "routing": {
                "loads": self.router.loads(),
                "spilled": self.router.spilled,
                "targets": sorted(self.router.targets()),
            }
            if self.router
            else None,
            "feedback_stored": fb.stored if fb else 0,
            "feedback_dead_lettered": fb.dead_lettered if fb else 0,
        }

    @mode.Service.task
    async def _batch_timer(self) -> None:
        await self.ingest.batcher.run_timer()

    @mode.Service.task
    async def _status_feed(self) -> None:
        if self.router is not None:
            await self.ready.wait()
            await feed_worker_status(self.settings, self.router)

    @mode.Service.task
    async def _controller_feed(self) -> None:
        if self.controller is not None:
            await self.ready.wait()
            await feed_latencies(self.settings, self.controller)

    async def flush(self) -> None:
        """Emit every open buffer and wait until Kafka confirmed it."""
        await self.ingest.batcher.flush_all()
        await self.sink.drain()

    async def on_stop(self) -> None:
        await self.flush()
        await self.sink.stop()
        if self.feedback is not None:
            await self.feedback.pool.close()
        if self.health is not None:
            await self.health.cleanup()


class StreamApp(faust.App):
    """Faust app that empties the batching buffers before Faust waits for every consumed
    record to be acknowledged at shutdown (otherwise it would wait out the window), and
    whose consumer waits at most `fetch_max_wait_ms` for a fetch (streams.faust_transport)."""

    autoglm_state: StreamState
    fetch_max_wait_ms: int = 1500  # Faust's own; create_app sets the configured one
    fetch_min_bytes: int = 1

    def _new_transport(self) -> Transport:
        return Transport(self.conf.broker_consumer, self)

    async def on_stop(self) -> None:
        await self.autoglm_state.ingest.batcher.drain_mode()
        await super().on_stop()


def create_app(settings: Settings) -> faust.App:
    """Build the stream processor for `settings` (one per process)."""
    app = StreamApp(
        settings.stream_app_id,
        **app_options(settings),
        broker_commit_interval=0.5,
        # A stream processor that dies holds its partitions until the session times out:
        # Faust's 60 s default meant a minute without batching after a crash (fault suite).
        broker_session_timeout=10.0,
        stream_wait_empty=True,
    )
    app.fetch_max_wait_ms = settings.kafka_fetch_max_wait_ms  # before the first topic creates the transport
    app.fetch_min_bytes = settings.kafka_fetch_min_bytes
    state = StreamState(settings)
    app.autoglm_state = state  # type: ignore[attr-defined]
    app.add_dependency(state)  # started before the agents consume, stopped after them

    raw = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    questions = app.topic(topic_name(settings, QUESTIONS), **raw)
    feedback = app.topic(topic_name(settings, FEEDBACK), **raw)

    @app.agent(questions)
    async def ingest_questions(stream: faust.StreamT) -> None:
        manual = stream.noack()
        await state.ready.wait()
        async for event in manual.events():
            msg = event.message
            await state.ingest.handle(msg.key, msg.value, msg.partition, msg.offset, _acker(manual, event))

    @app.agent(feedback)
    async def ingest_feedback(stream: faust.StreamT) -> None:
        manual = stream.noack()
        await state.ready.wait()
        async for event in manual.events():
            msg = event.message
            assert state.feedback is not None, "feedback agent started before the database pool"
            await state.feedback.handle(msg.key, msg.value, msg.partition, msg.offset, _acker(manual, event))

    @app.on_partitions_revoked.connect
    async def _flush_on_revoke(app: faust.App, revoked: Any, **kwargs: Any) -> None:
        await state.flush()

    return app


def _acker(stream: faust.StreamT, event: faust.EventT):  # noqa: ANN202
    async def ack() -> None:
        await stream.ack(event)

    return ack
