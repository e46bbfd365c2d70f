"""Child-process entry for the systems the harness starts itself:

    python -m harness.bench.serve passthrough|per_message|faust_take|worker

Settings come from the environment (the harness sets the isolated topic prefix and group
ids). `AUTOGLM_BENCH_REASONER=echo` swaps the reasoner for the instant echo one (smoke
runs); otherwise it is `reasoning.reasoner.load_for_serving(settings)`, as in the pipeline.
`worker` runs the pipeline's own BatchWorker, used only with the echo reasoner (the
real pipeline is started through `autoglm run`), and by the experiments, whose workers
log every reasoner call (`AUTOGLM_BENCH_CALL_LOG`, see harness.bench.calls).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable

from harness.bench.systems import CALL_LOG_ENV
from reasoning.loading import load_for_serving
from reasoning.reasoner import Reasoner
from runtime.heap import freeze_startup_objects
from runtime.logs import setup_logging
from schemas.settings import Settings, get_settings

KINDS = ("passthrough", "per_message", "faust_take", "worker")
REASONER_ENV = "AUTOGLM_BENCH_REASONER"


def load_bench_reasoner(settings: Settings) -> Reasoner:
    if os.environ.get(REASONER_ENV) == "echo":
        from harness.bench.echo import EchoReasoner

        reasoner: Reasoner = EchoReasoner()
    else:
        reasoner = load_for_serving(settings)  # every system starts with its models in memory
    call_log = os.environ.get(CALL_LOG_ENV)
    if call_log:
        from pathlib import Path

        from harness.bench.calls import CallRecorder

        return CallRecorder(reasoner, Path(call_log))
    return reasoner


def until_signal(serve: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run `serve(stop)` until SIGTERM/SIGINT sets `stop`."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(stop)

    asyncio.run(main())


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in KINDS:
        print(f"usage: python -m harness.bench.serve {{{'|'.join(KINDS)}}}", file=sys.stderr)
        return 2
    kind = argv[0]
    setup_logging(os.environ.get("AUTOGLM_LOG_LEVEL", "WARNING"))
    settings = get_settings()
    if kind == "passthrough":
        from harness.bench.passthrough import relay

        until_signal(lambda stop: relay(settings, stop))
        return 0
    if kind == "worker":  # the pipeline's worker: its reasoner in a child process, as `autoglm run` does
        from workers.reasoner_process import serving_reasoner
        from workers.service import BatchWorker

        reasoner = serving_reasoner(settings, load_bench_reasoner)
        freeze_startup_objects()  # as workers.main does
        until_signal(lambda stop: BatchWorker(settings, reasoner).run(stop))
        return 0
    reasoner = load_bench_reasoner(settings)
    # The baselines get the same process tuning as (c): unfrozen, the loaded reasoner made
    # every full collection a ~500-ms stop (Faust's take showed p99 400-440 ms in steps
    # whose p50 was 80-100 ms); the comparison is about batching, not the heap.
    freeze_startup_objects()
    if kind == "per_message":
        from harness.bench.per_message import serve

        until_signal(lambda stop: serve(settings, reasoner, stop))
    else:
        from harness.bench.faust_take import run

        run(settings, reasoner)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
