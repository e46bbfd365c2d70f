"""Run the stream processor in this process (one Faust worker).

Scale out by starting more processes: they join the same consumer group and Kafka
spreads the `questions` and `feedback` partitions over them.
"""

from __future__ import annotations

import faust

from schemas.settings import Settings
from streams.app import create_app


def run_streams(settings: Settings, loglevel: str = "warning") -> None:
    """Block running the Faust worker until SIGINT/SIGTERM."""
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, override_logging=False)
    worker.execute_from_commandline()
