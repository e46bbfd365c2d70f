"""Run the stream processor in this process (one Faust worker).

Scale out by starting more processes: they join the same consumer group and Kafka
spreads the `questions` and `feedback` partitions over them.
"""

from __future__ import annotations

import sys

import faust

from schemas.settings import Settings
from streams.app import create_app


def run_streams(settings: Settings, loglevel: str = "warning") -> None:
    """Block running the Faust worker until SIGINT/SIGTERM."""
    # Faust runs its Kafka consumer in a thread of its own and hands records to the event
    # loop through a queue: each hand-over waits for the GIL, by default up to 5 ms.
    sys.setswitchinterval(settings.gil_switch_ms / 1000)
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, override_logging=False)
    worker.execute_from_commandline()
