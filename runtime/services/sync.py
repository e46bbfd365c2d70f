"""Run a coroutine from synchronous code, whether or not an event loop is already running.

`up()`/`down()` are called from the CLI (no loop) and from async code and tests (a loop is
running, so `asyncio.run` would refuse): in that case the coroutine runs on a fresh loop in a
worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion and return its result."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
