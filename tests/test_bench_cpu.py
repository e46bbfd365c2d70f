"""`harness.bench.cpu.CpuMeter` counts a process's children (the worker's reasoner process)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from harness.bench.cpu import CpuMeter


def test_a_busy_child_counts_for_its_parent() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 60: pass"])
    try:
        time.sleep(0.5)  # started before the meter, as a worker's reasoner process is
        meter = CpuMeter({"parent": os.getpid()})
        meter.start()
        time.sleep(1.5)  # the parent itself sleeps
        use = meter.stop()["parent"]
    finally:
        child.kill()
        child.wait()
    assert use > 25.0, use  # the child spins on a core (shared with others on a busy machine)


def test_a_child_with_its_own_row_is_not_counted_for_its_parent() -> None:
    """The harness starts the systems it measures; their CPU is theirs, not the harness's."""
    child = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 60: pass"])
    try:
        time.sleep(0.5)
        meter = CpuMeter({"harness": os.getpid(), "system": child.pid})
        meter.start()
        time.sleep(1.5)
        use = meter.stop()
    finally:
        child.kill()
        child.wait()
    assert use["system"] > 25.0, use
    assert use["harness"] < 15.0, use  # the test process itself only sleeps
