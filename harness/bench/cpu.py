"""CPU time of processes from /proc, to say which one saturates a core during a step."""

from __future__ import annotations

import os
import time

import psutil

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds used by `pid` so far, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def tree_cpu_seconds(pid: int, exclude: frozenset[int] = frozenset()) -> dict[int, float]:
    """CPU seconds of `pid` and of each of its descendants (a worker's reasoner process
    is its child: its reasoning counts as the worker's), by pid; {} when `pid` is gone.
    A descendant in `exclude` is measured on its own, so it and its subtree are skipped
    (the harness starts the systems it measures: they are not the harness's CPU)."""
    pids: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        try:
            todo += [c.pid for c in psutil.Process(current).children() if c.pid not in exclude]
        except psutil.Error:
            pass  # it ended meanwhile: cpu_seconds finds nothing for it either
    return {p: used for p in pids if (used := cpu_seconds(p)) is not None}


class CpuMeter:
    """CPU use of each process and its descendants between `start()` and `stop()`, in % of
    one core (a descendant started meanwhile is not counted, nor one that is itself in
    `pids`: it has its own row)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._t0 = 0.0
        self._c0: dict[str, dict[int, float]] = {}

    def _tree(self, name: str) -> dict[int, float]:
        pid = self.pids[name]
        return tree_cpu_seconds(pid, frozenset(p for p in self.pids.values() if p != pid))

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._c0 = {name: self._tree(name) for name in self.pids}

    def stop(self) -> dict[str, float]:
        elapsed = max(1e-6, time.monotonic() - self._t0)
        out = {}
        for name, pid in self.pids.items():
            before, after = self._c0.get(name, {}), self._tree(name)
            if pid in before and pid in after:
                used = sum(after[p] - before[p] for p in after if p in before)
                out[name] = round(100 * used / elapsed, 1)
        return out


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


async def wait_quiet(
    pids: dict[str, int], max_pct: float = 20.0, window_s: float = 3.0, timeout_s: float = 300.0
) -> dict:
    """Wait until no process in `pids` uses more than `max_pct` of a core over `window_s`:
    models that finish loading in a background thread after the first answer must not
    be measured as load. Returns the last window's use per process."""
    import asyncio

    deadline = time.monotonic() + timeout_s
    while True:
        meter = CpuMeter(pids)
        meter.start()
        await asyncio.sleep(window_s)
        use = meter.stop()
        if all(v <= max_pct for v in use.values()) or time.monotonic() > deadline:
            return use
