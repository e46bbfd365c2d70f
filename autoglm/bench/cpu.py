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


def tree_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds of `pid` and of each of its descendants (a worker's reasoner process
    is its child: its reasoning counts as the worker's), by pid; {} when `pid` is gone."""
    try:
        pids = [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]
    except psutil.Error:
        return {}
    return {p: used for p in pids if (used := cpu_seconds(p)) is not None}


class CpuMeter:
    """CPU use of each process and its descendants between `start()` and `stop()`, in % of
    one core (a descendant started meanwhile is not counted)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._t0 = 0.0
        self._c0: dict[str, dict[int, float]] = {}

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._c0 = {name: tree_cpu_seconds(pid) for name, pid in self.pids.items()}

    def stop(self) -> dict[str, float]:
        elapsed = max(1e-6, time.monotonic() - self._t0)
        out = {}
        for name, pid in self.pids.items():
            before, after = self._c0.get(name, {}), tree_cpu_seconds(pid)
            if pid in before and pid in after:
                used = sum(after[p] - before[p] for p in after if p in before)
                out[name] = round(100 * used / elapsed, 1)
        return out


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


async def wait_quiet(pids: dict[str, int], max_pct: float = 20.0, window_s: float = 3.0, timeout_s: float = 300.0) -> dict:
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
