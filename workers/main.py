"""Run one batch worker in this process until SIGINT/SIGTERM.

Scale out by starting more processes: they share the `autoglm-workers` consumer group,
so Kafka gives each a share of the `batches` partitions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time

from aiokafka.errors import KafkaError

from reasoning.loading import load_for_serving
from runtime.heap import freeze_startup_objects
from schemas.settings import Settings
from workers.reasoner_process import serving_reasoner
from workers.service import BatchWorker

log = logging.getLogger(__name__)


async def _serve(settings: Settings) -> None:
    # The reasoner's thread (which only waits, when the reasoner runs in its own process)
    # and the event loop share the GIL; by default a thread waiting for it waits up to 5 ms.
    sys.setswitchinterval(settings.gil_switch_ms / 1000)
    reasoner = await asyncio.to_thread(serving_reasoner, settings, load_for_serving)
    freeze_startup_objects()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        # Finish the batches in hand (their transaction commits), leave the group, exit;
        # if that takes longer than the bound, exit anyway: uncommitted work is redelivered.
        stop.set()
        loop.call_later(settings.shutdown_timeout_s, _hard_exit)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        await _serve_until_stopped(BatchWorker(settings, reasoner), stop)
    finally:
        close = getattr(reasoner, "close", None)
        if close is not None:
            close()


async def _serve_until_stopped(worker: BatchWorker, stop: asyncio.Event, max_backoff_s: float = 30.0) -> None:
    """Run the worker; when the broker is lost (e.g. restarted) or a delivery is refused
    (fenced by a partition's new owner), start again with new clients, with backoff.

    The model stays loaded, so a broker restart costs a reconnect and a group join, not a
    process restart with a model load. Uncommitted batches are redelivered to whoever owns
    their partitions next; the database rules keep one row per question.
    """
    backoff = 1.0
    while not stop.is_set():
        began = time.monotonic()
        try:
            await worker.run(stop)
        except KafkaError as exc:
            if time.monotonic() - began > 60:
                backoff = 1.0  # it ran well for a while: this is a new outage
            log.warning(
                "Kafka client failed (%r: broker lost, or fenced in a rebalance); reconnecting in "
                "%.0f s; uncommitted batches will be redelivered",
                exc,
                backoff,
            )
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(2 * backoff, max_backoff_s)


def _hard_exit() -> None:
    log.error("shutdown took too long; exiting without finishing (work will be redelivered)")
    os._exit(3)


def run_worker(settings: Settings) -> None:
    """Block serving batches; a SIGTERM finishes the batch in hand, commits and exits."""
    asyncio.run(_serve(settings))
