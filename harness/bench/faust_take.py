"""Baseline (b): Faust's own batching, `stream.take(100, within=0.05)`.

One agent takes up to 100 questions (whatever their key) or whatever arrived within
50 ms, answers the list with one reasoner call (in a thread, as in the worker) and sends
the answers through a Faust topic. Faust acknowledges the taken records itself.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

import faust

from harness.bench.replies import replies
from reasoning.reasoner import Reasoner
from runtime.clock import now_ms
from runtime.faust_config import app_options
from schemas.answer import ModelInfo
from schemas.question import Question
from schemas.settings import Settings
from schemas.topics import ANSWERS, QUESTIONS, topic_name
from schemas.wire import WireError, decode

log = logging.getLogger(__name__)

TAKE_MAX = 100
TAKE_WITHIN_S = 0.05


def create_app(settings: Settings, reasoner: Reasoner) -> faust.App:
    app = faust.App(
        settings.stream_app_id,
        **app_options(settings),
    )
    raw = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    questions = app.topic(topic_name(settings, QUESTIONS), **raw)
    answers = app.topic(topic_name(settings, ANSWERS), **raw)
    model = ModelInfo(name=reasoner.name, version=reasoner.version)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reasoner")

    @app.agent(questions)
    async def answer(stream: faust.StreamT) -> None:
        loop = asyncio.get_running_loop()
        async for values in stream.take(TAKE_MAX, within=TAKE_WITHIN_S):
            taken = now_ms()
            batch = []
            for value in values:
                try:
                    batch.append(decode(value, Question, settings.max_payload_bytes))
                except WireError as exc:
                    log.warning("skipped a bad record: %s", exc.error_class)
            if not batch:
                continue
            started = now_ms()
            results = await loop.run_in_executor(executor, reasoner.answer_batch, batch)
            for reply in replies(batch, taken, results, model, started, now_ms()):
                await answers.send(key=reply.user_id.encode(), value=reply.to_bytes())

    return app


def run(settings: Settings, reasoner: Reasoner) -> None:
    """Block running the Faust worker until SIGINT/SIGTERM."""
    app = create_app(settings, reasoner)
    faust.Worker(app, loglevel="warning", quiet=True, override_logging=False).execute_from_commandline()
