"""Child processes started by the CLI, the tests, the benchmark and the chaos and fuzz
runs: the environment that makes a child see exactly a given `Settings`, and stopping
children (SIGTERM, then SIGKILL).

Why one module: each of those had its own copy, and the copies had drifted; one wrote
secrets as `**********` and dicts in Python's repr, which a child cannot parse back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterable

import orjson
from pydantic import SecretStr

from schemas.settings import Settings

# Written from the resolved values below, or set per child by the caller.
_NOT_COPIED = ("kafka_bootstrap_servers", "database_url", "worker_instance")


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
        env[f"AUTOGLM_{name.upper()}"] = orjson.dumps(value).decode() if isinstance(value, (dict, list, tuple)) else str(value)
    env["AUTOGLM_KAFKA_BOOTSTRAP_SERVERS"] = settings.kafka_bootstrap_servers
    env["AUTOGLM_DATABASE_URL"] = settings.dsn
    return env


def terminate(procs: Iterable[subprocess.Popen], timeout_s: float = 30.0) -> None:
    """SIGTERM every child still running (they drain and commit), then SIGKILL whatever
    has not exited within `timeout_s` in all."""
    procs = list(procs)
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
