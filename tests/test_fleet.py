"""No process outlives its parent: `autoglm run` stopped by SIGTERM (as a supervisor or
`kill` stops it) stops its stream processor, workers and their reasoner children; killed
outright (SIGKILL), its children still die with it (runtime.fleet, parent-death signal)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from runtime.fleet import Fleet, settings_env
from schemas.settings import REPO_ROOT, Settings


def _start_run(settings: Settings, log: Path) -> tuple[subprocess.Popen, list[psutil.Process]]:
    """`autoglm run --workers 2`, and its descendants once all are up (the stream processor,
    two workers and each worker's reasoner process)."""
    with open(log, "ab") as out:
        parent = subprocess.Popen(
            [sys.executable, "-m", "autoglm.cli", "run", "--workers", "2"],
            env=settings_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        children = psutil.Process(parent.pid).children(recursive=True)
        if len(children) >= 5:  # streams + 2 workers + 2 reasoner processes
            return parent, children
        assert parent.poll() is None, log.read_text()[-3000:]
        time.sleep(0.5)
    parent.kill()
    raise AssertionError(f"the pipeline did not start its children: {log.read_text()[-3000:]}")


def _alive(procs: list[psutil.Process]) -> list[str]:
    alive = []
    for p in procs:
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            pass
    return alive


def _wait_gone(procs: list[psutil.Process], timeout_s: float) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while (alive := _alive(procs)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return alive


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_run_leaves_no_child_behind(isolated: Settings, tmp_path: Path, sig: signal.Signals) -> None:
    parent, children = _start_run(isolated, tmp_path / "run.log")
    try:
        parent.send_signal(sig)
        parent.wait(timeout=isolated.shutdown_timeout_s + 30)
        if sig == signal.SIGTERM:
            assert parent.returncode == 0, (tmp_path / "run.log").read_text()[-3000:]
        left = _wait_gone(children, timeout_s=isolated.shutdown_timeout_s + 30)
        assert not left, f"children outlived `autoglm run` after {sig.name}: {left}"
    finally:
        for p in children:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        if parent.poll() is None:
            parent.kill()


def test_fleet_restarts_a_crashed_slot_and_stops_everything(isolated: Settings, tmp_path: Path) -> None:
    """`reap` records a child that exited on its own and starts it again; `stop_all` stops
    the rest. A plain command stands in for a product process (no model to load)."""
    fleet = Fleet(isolated, tmp_path)
    sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
    crasher = [sys.executable, "-c", "import sys; sys.exit(7)"]
    fleet.start("sleeper", "sleeper", sleeper)
    first = fleet.start("crasher", "crasher", crasher)
    first.wait(timeout=30)
    crashes = fleet.reap()
    assert [(c.name, c.returncode) for c in crashes] == [("crasher", 7)]
    assert fleet.slots["crasher"].proc.pid != first.pid  # started again
    procs = [s.proc for s in fleet.slots.values()]
    fleet.stop_all(timeout_s=10)
    assert all(p.poll() is not None for p in procs)
    assert fleet.slots == {}
