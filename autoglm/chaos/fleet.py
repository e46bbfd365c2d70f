"""The pipeline under test as real child processes: start, SIGKILL, SIGSTOP/SIGCONT, SIGTERM.

Every process is `python -m autoglm.cli run --streams-only|--workers-only`, configured only
through the environment (as a container would be), with a stable `AUTOGLM_WORKER_INSTANCE`
per slot so a restarted worker fences its predecessor's transactions. A process that exits
without being told to is a crash: `reap` records it and restarts the slot, as a supervisor
(`restart: unless-stopped` in docker-compose.yml) would.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from autoglm.processes import settings_env
from schemas.settings import REPO_ROOT, Settings


def _bound_to_us(cmd: list[str]) -> list[str]:
    """Prefix `cmd` so the child gets SIGTERM if the driver dies (no orphans after a crash).

    The parent-death signal is set by `setpriv` (util-linux) and survives the exec; without
    it (not Linux), children are still stopped by `stop_all` on any orderly exit."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *cmd] if setpriv else cmd


@dataclass
class Crash:
    """A child that exited on its own: which slot, its exit code, and the end of its log."""

    name: str
    returncode: int | None
    at: float
    log_tail: str


@dataclass
class Slot:
    name: str
    role: str  # "streams" | "workers"
    proc: subprocess.Popen
    started: float = field(default_factory=time.time)


class Fleet:
    """Named child processes of one scenario; logs go to `log_dir/<name>.log`."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.settings = settings
        self.env = settings_env(settings)
        self.log_dir = log_dir
        self.slots: dict[str, Slot] = {}
        self.crashes: list[Crash] = []
        self.stopping = False
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, role: str) -> Slot:
        """Start (or restart) slot `name` as a stream processor or a worker.

        Call it from one long-lived thread (the event loop's): the parent-death signal fires
        when the thread that started the child ends."""
        if role not in ("streams", "workers"):
            raise ValueError(f"role must be 'streams' or 'workers', not {role!r}")
        cmd = [sys.executable, "-m", "autoglm.cli", "--log-level", "INFO", "run", f"--{role}-only"]
        env = {**self.env, "AUTOGLM_WORKER_INSTANCE": name}
        with open(self.log_dir / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(_bound_to_us(cmd), env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        self.slots[name] = Slot(name, role, proc)
        return self.slots[name]

    def pid(self, name: str) -> int:
        return self.slots[name].proc.pid

    def names(self, role: str) -> list[str]:
        return sorted(n for n, s in self.slots.items() if s.role == role)

    def kill(self, name: str) -> None:
        """SIGKILL: no flush, no commit, no goodbye to the group."""
        slot = self.slots.pop(name)
        slot.proc.send_signal(signal.SIGKILL)
        slot.proc.wait()

    def pause(self, name: str) -> None:
        self.slots[name].proc.send_signal(signal.SIGSTOP)

    def resume(self, name: str) -> None:
        self.slots[name].proc.send_signal(signal.SIGCONT)

    def terminate(self, name: str, timeout_s: float = 30.0) -> int | None:
        """SIGTERM (graceful: drain, commit, leave the group); SIGKILL after `timeout_s`."""
        slot = self.slots.pop(name)
        slot.proc.send_signal(signal.SIGTERM)
        try:
            return slot.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            slot.proc.kill()
            slot.proc.wait()
            return None

    def rss(self, name: str) -> int | None:
        """Resident set size in bytes of slot `name` and its children, None if it is gone."""
        try:
            proc = psutil.Process(self.pid(name))
            return proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
        except (KeyError, psutil.Error):
            return None

    def reap(self) -> list[Crash]:
        """Record and restart every slot whose process exited on its own."""
        found: list[Crash] = []
        if self.stopping:
            return found
        for name, slot in list(self.slots.items()):
            rc = slot.proc.poll()
            if rc is None:
                continue
            crash = Crash(name, rc, time.time(), self.log_tail(name))
            found.append(crash)
            self.crashes.append(crash)
            self.start(name, slot.role)
        return found

    def log_tail(self, name: str, chars: int = 2000) -> str:
        path = self.log_dir / f"{name}.log"
        try:
            return path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop_all(self, timeout_s: float = 30.0) -> None:
        """SIGTERM everyone (SIGCONT first, in case one is paused), SIGKILL stragglers."""
        self.stopping = True
        for slot in self.slots.values():
            if slot.proc.poll() is None:
                slot.proc.send_signal(signal.SIGCONT)
                slot.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for slot in self.slots.values():
            try:
                slot.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                slot.proc.kill()
                slot.proc.wait()
        self.slots.clear()
