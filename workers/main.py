"""Run one batch worker in this process until SIGINT/SIGTERM.

Scale out by starting more processes: they share the `autoglm-workers` consumer group,
so Kafka gives each a share of the `batches` partitions.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from schemas.settings import Settings
from workers.reasoner import load_reasoner
from workers.service import BatchWorker

log = logging.getLogger(__name__)


async def _serve(settings: Settings) -> None:
    reasoner = await asyncio.to_thread(load_reasoner, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        # Finish the batches in hand (their transaction commits), leave the group, exit;
        # if that takes longer than the bound, exit anyway: uncommitted work is redelivered.
        stop.set()
        loop.call_later(settings.shutdown_timeout_s, _hard_exit)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    await BatchWorker(settings, reasoner).run(stop)


def _hard_exit() -> None:
    log.error("shutdown took too long; exiting without finishing (work will be redelivered)")
    os._exit(3)


def run_worker(settings: Settings) -> None:
    """Block serving batches; a SIGTERM finishes the batch in hand, commits and exits."""
    asyncio.run(_serve(settings))
