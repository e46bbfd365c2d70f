"""Experiments that run after the systems in the same `autoglm bench` run, each on its
own isolated copy of (c), each bounded in time (its load phases are multiples of the
step length; startup is bounded by the ready timeout):

* `controller` - adaptive batching: convergence after a load step, and a mixed load
  against the best fixed batch window (harness.bench.experiments.controller);
* `skew`       - one hot user, 2 workers, load-aware routing off and on (.skew);
* `splitting`  - 3-hop questions only, cost-aware splitting off and on (.splitting);
* `caches`     - the encoding cache off and on, the subgraph cache off and on under
  popular questions (.caches);
* `compression` - record batches uncompressed, lz4 and zstd: bytes per question on disk
  per topic and CPU per question per process (.compression).

One experiment's failure is recorded and the next one runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from harness.bench.experiments.pipeline import Context
from harness.bench.progress import say

log = logging.getLogger(__name__)

EXPERIMENTS = ("controller", "skew", "splitting", "caches", "compression")


def _runner(name: str, main_pipeline: dict) -> Callable[[Context], Awaitable[dict]]:
    if name == "controller":
        from harness.bench.experiments import controller

        return lambda ctx: controller.run(ctx, main_pipeline)
    if name == "skew":
        from harness.bench.experiments import skew

        return skew.run
    if name == "caches":
        from harness.bench.experiments import caches

        return caches.run
    if name == "compression":
        from harness.bench.experiments import compression

        return compression.run
    from harness.bench.experiments import splitting

    return splitting.run


async def run_experiments(ctx: Context, names: tuple[str, ...], main_pipeline: dict) -> dict[str, dict]:
    """Run the named experiments one after another; each result carries `elapsed_s`."""
    out: dict[str, dict] = {}
    for name in (n for n in EXPERIMENTS if n in names):
        say(f"experiment {name}: {ctx.mode} mode, load sized by {ctx.reference_source}")
        t0 = time.monotonic()
        try:
            out[name] = await _runner(name, main_pipeline)(ctx)
        except Exception as exc:  # noqa: BLE001 - one experiment's failure must not lose the others
            log.exception("experiment %s failed", name)
            out[name] = {"error": f"{exc!r}"[:500]}
        out[name]["elapsed_s"] = round(time.monotonic() - t0, 1)
        say(f"experiment {name}: done in {out[name]['elapsed_s']:.0f}s")
    return out
