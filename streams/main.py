"""Run the stream processor in this process (one Faust worker).

Scale out by starting more processes: they join the same consumer group and Kafka
spreads the `questions` and `feedback` partitions over them.
"""

from __future__ import annotations

import sys
from typing import IO

import faust

from schemas.settings import Settings
from streams.app import create_app


def run_streams(settings: Settings, loglevel: str = "warning") -> None:
    """Block running the Faust worker until SIGINT/SIGTERM."""
    # Faust runs its Kafka consumer in a thread of its own and hands records to the event
    # loop through a queue: each hand-over waits for the GIL, by default up to 5 ms.
    sys.setswitchinterval(settings.gil_switch_ms / 1000)
    build_worker(create_app(settings), loglevel).execute_from_commandline()


def build_worker(app: faust.App, loglevel: str = "warning", stdout: IO[str] | None = None) -> faust.Worker:
    """Faust's worker for `app`, without its terminal spinner when stdout is not a terminal:
    the spinner writes cursor escape codes that end up in log files (`autoglm run` and the
    bench send the stream processor's output to one)."""
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, override_logging=False, stdout=stdout or sys.stdout)
    if not worker.stdout.isatty():
        worker.spinner = None
    return worker
