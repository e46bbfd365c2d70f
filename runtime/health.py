"""Liveness and readiness over HTTP for each process (streams, every worker).

GET /healthz -> 200 while the event loop turns and the main loop made progress recently;
GET /readyz  -> 200 once the process serves (models loaded, clients connected), else 503;
GET /metrics -> the process's counters as JSON.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

Probe = Callable[[], bool]
Counters = Callable[[], dict]


class Heartbeat:
    """The main loop calls `beat()`; liveness fails when it has not for `stale_s`."""

    def __init__(self, stale_s: float = 120.0) -> None:
        self.stale_s = stale_s
        self.last = time.monotonic()

    def beat(self) -> None:
        self.last = time.monotonic()

    def alive(self) -> bool:
        return time.monotonic() - self.last < self.stale_s


async def serve_health(port: int, role: str, alive: Probe, ready: Probe, counters: Counters) -> web.AppRunner:
    """Start the endpoint on 127.0.0.1:`port`; returns the runner to `cleanup()` at exit."""

    async def healthz(_: web.Request) -> web.Response:
        ok = alive()
        return web.json_response({"role": role, "alive": ok}, status=200 if ok else 503)

    async def readyz(_: web.Request) -> web.Response:
        ok = ready()
        return web.json_response({"role": role, "ready": ok}, status=200 if ok else 503)

    async def metrics(_: web.Request) -> web.Response:
        return web.json_response({"role": role, **counters()})

    app = web.Application()
    app.add_routes([web.get("/healthz", healthz), web.get("/readyz", readyz), web.get("/metrics", metrics)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner
