"""The one process fleet: every child process the CLI, the tests and the harnesses start.

A child sees exactly a given `Settings` through its environment (`settings_env`), logs to
`log_dir/<name>.log`, and never outlives its parent: the kernel sends it SIGTERM when the
parent dies, however it dies (Linux `PR_SET_PDEATHSIG`), and `stop_all` stops it (SIGTERM,
then SIGKILL) on an orderly exit. `run_until_signalled` is how `autoglm run` waits: SIGTERM
from a supervisor or `kill` stops the children before the parent exits (docs/operations.md,
"Shutdown").

Why one module: the CLI, the chaos run, the fuzzer, the benchmark and the tests each had
their own spawner, and they had drifted (one wrote secrets as `**********`; two left
children running after their parent died).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import psutil
from pydantic import SecretStr

from schemas.settings import REPO_ROOT, Settings

# Written from the resolved values below, or set per child by the caller.
_NOT_COPIED = ("kafka_bootstrap_servers", "database_url", "worker_instance")
# The product's processes by role: `python -m streams` / `python -m workers`.
ROLES = ("streams", "workers")
_PR_SET_PDEATHSIG = 1


def settings_env(settings: Settings) -> dict[str, str]:
    """This process's environment plus every field of `settings` as `AUTOGLM_*`, so a child
    reads the same settings (secrets revealed, dicts and lists as JSON, as the settings
    loader parses them). Unset (None) fields are left to the environment."""
    env = dict(os.environ)
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is None or name in _NOT_COPIED:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[f"AUTOGLM_{name.upper()}"] = (
            orjson.dumps(value).decode() if isinstance(value, (dict, list, tuple)) else str(value)
        )
    env["AUTOGLM_KAFKA_BOOTSTRAP_SERVERS"] = settings.kafka_bootstrap_servers
    env["AUTOGLM_DATABASE_URL"] = settings.dsn
    return env


def role_command(role: str, log_level: str = "INFO") -> list[str]:
    """The command line of one of the product's processes (what `autoglm run` starts)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")
    return [sys.executable, "-m", role, "--log-level", log_level]


def die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies (Linux; elsewhere a no-op, and
    `stop_all` still stops children on any orderly exit). The signal is tied to the thread
    that started the child, so start children from one long-lived thread."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def terminate(procs: Iterable[subprocess.Popen], timeout_s: float = 30.0) -> None:
    """SIGTERM every child still running (they drain and commit; SIGCONT first, in case one
    is paused), then SIGKILL whatever has not exited within `timeout_s` in all."""
    procs = list(procs)
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGCONT)
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@dataclass
class Crash:
    """A child that exited without being told to: its slot, exit code, and end of its log."""

    name: str
    returncode: int | None
    at: float
    log_tail: str


@dataclass
class Slot:
    name: str
    role: str  # "streams", "workers", or a harness's own name for a command it started
    proc: subprocess.Popen
    cmd: list[str]
    env: dict[str, str]
    started: float = field(default_factory=time.time)


class Fleet:
    """Named child processes configured by one `Settings`; logs in `log_dir/<name>.log`.

    Each product process gets a stable `AUTOGLM_WORKER_INSTANCE` (its slot name), so a
    restarted worker fences its predecessor's transactions.
    """

    def __init__(self, settings: Settings, log_dir: Path | None = None, log_level: str = "INFO") -> None:
        self.settings = settings
        self.env = settings_env(settings)
        self.log_dir = log_dir
        self.log_level = log_level
        self.slots: dict[str, Slot] = {}
        self.crashes: list[Crash] = []
        self.stopping = False
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)

    def configure(self, **updates: object) -> None:
        """Change settings for processes started after this call."""
        self.settings = self.settings.model_copy(update=updates)
        self.env = settings_env(self.settings)

    def start(
        self, name: str, role: str, cmd: list[str] | None = None, env: dict[str, str] | None = None
    ) -> subprocess.Popen:
        """Start (or restart) slot `name`: a product process of `role`, or `cmd` when given.
        `env` adds to the settings' environment for this child only."""
        cmd = cmd or role_command(role, self.log_level)
        child_env = {**self.env, "AUTOGLM_WORKER_INSTANCE": name, **(env or {})}
        log = open(self.log_dir / f"{name}.log", "ab") if self.log_dir else None  # noqa: SIM115 - the child owns it
        try:
            proc = subprocess.Popen(
                cmd,
                env=child_env,
                stdout=log,
                stderr=subprocess.STDOUT if log else None,
                cwd=REPO_ROOT,
                preexec_fn=die_with_parent,  # noqa: PLW1509 - only a prctl call, no locks taken
            )
        finally:
            if log:
                log.close()
        self.slots[name] = Slot(name, role, proc, cmd, env or {})
        return proc

    def start_pipeline(self, workers: int, health_port: int = 0) -> None:
        """One stream processor and `workers` workers, as `autoglm run` starts them; with a
        health port, streams serve it and worker k serves port + k."""
        for i, name in enumerate(["streams"] + [f"worker-{k}" for k in range(1, workers + 1)]):
            env = {"AUTOGLM_HEALTH_PORT": str(health_port + i)} if health_port else None
            self.start(name, "streams" if i == 0 else "workers", env=env)

    def forget(self, name: str) -> None:
        """Stop tracking slot `name` (its process was stopped by the caller)."""
        self.slots.pop(name)

    def pid(self, name: str) -> int:
        return self.slots[name].proc.pid

    def pids(self) -> dict[str, int]:
        """Slot name -> pid of every child still running."""
        return {n: s.proc.pid for n, s in self.slots.items() if s.proc.poll() is None}

    def names(self, role: str) -> list[str]:
        return sorted(n for n, s in self.slots.items() if s.role == role)

    def exited(self) -> dict[str, int]:
        """Slot name -> exit code of every child that has exited."""
        return {n: rc for n, s in self.slots.items() if (rc := s.proc.poll()) is not None}

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
        """SIGTERM (graceful: drain, commit, leave the group); SIGKILL after `timeout_s`.
        Returns the exit code, None when it had to be killed."""
        slot = self.slots.pop(name)
        slot.proc.send_signal(signal.SIGTERM)
        try:
            return slot.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            slot.proc.kill()
            slot.proc.wait()
            return None

    def restart(self, name: str, timeout_s: float = 30.0) -> subprocess.Popen:
        """Stop slot `name` gracefully and start it again with the current settings."""
        slot = self.slots[name]
        self.terminate(name, timeout_s)
        return self.start(name, slot.role, slot.cmd if slot.role not in ROLES else None, slot.env)

    def rss(self, name: str) -> int | None:
        """Resident set size in bytes of slot `name` and its children, None if it is gone."""
        try:
            proc = psutil.Process(self.pid(name))
            return proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
        except (KeyError, psutil.Error):
            return None

    def reap(self) -> list[Crash]:
        """Record and restart every slot whose process exited on its own, as a supervisor
        (`restart: unless-stopped` in docker-compose.yml) would."""
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
            self.start(name, slot.role, slot.cmd, slot.env)
        return found

    def log_tail(self, name: str, chars: int = 2000) -> str:
        if self.log_dir is None:
            return ""
        try:
            return (self.log_dir / f"{name}.log").read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def logs(self, chars: int = 3000) -> str:
        """The end of every child's log, for a failing test's message."""
        return "\n".join(f"--- {name}\n{self.log_tail(name, chars)}" for name in sorted(self.slots))

    def tracebacks(self) -> dict[str, int]:
        """Log name -> number of Python tracebacks in it."""
        if self.log_dir is None:
            return {}
        return {p.stem: p.read_text(errors="replace").count("Traceback") for p in self.log_dir.glob("*.log")}

    def stop_all(self, timeout_s: float = 30.0) -> None:
        """SIGTERM everyone (they drain and commit), SIGKILL stragglers after `timeout_s`."""
        self.stopping = True
        terminate([s.proc for s in self.slots.values()], timeout_s)
        self.slots.clear()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[threading.Event]:
    """Within the block, SIGTERM and SIGINT set the yielded event instead of killing this
    process, so it can stop its children first. Restores the old handlers on exit."""
    stop = threading.Event()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, lambda *_: stop.set())
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_until_signalled(fleet: Fleet, poll_s: float = 0.5) -> int:
    """Wait until SIGTERM/SIGINT or until a child exits on its own, then stop every child.
    Returns 0 when told to stop, 1 when a child died first."""
    with stop_on_sigterm() as stop:
        while not stop.is_set() and not fleet.exited():
            stop.wait(poll_s)
        died = not stop.is_set()
        fleet.stop_all()
    return 1 if died else 0
