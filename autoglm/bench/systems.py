"""The systems under test as child processes, each with its own topics and group ids.

* `ceiling`     - raw Kafka pass-through (autoglm.bench.passthrough), no model
* `per_message` - baseline (a), autoglm.bench.per_message
* `faust_take`  - baseline (b), autoglm.bench.faust_take
* `pipeline`    - (c) this system: `autoglm run --streams-only` and `--workers-only`
                  processes, as `autoglm run` starts them

Settings reach a child through the environment: the harness's own environment plus the
`AUTOGLM_*` values it changes (topic prefix, app and group ids, batch window, reasoner).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from autoglm.processes import settings_env, terminate
from schemas.settings import REPO_ROOT, Settings
from schemas.topics import BATCHES, QUESTIONS, topic_name

SYSTEMS = ("ceiling", "per_message", "faust_take", "pipeline")
LABELS = {
    "ceiling": "Kafka pass-through (ceiling)",
    "per_message": "(a) per-message aiokafka loop",
    "faust_take": "(b) Faust stream.take(100, within=0.05)",
    "pipeline": "(c) this system",
}
SERVE = [sys.executable, "-m", "autoglm.bench.serve"]
CALL_LOG_ENV = "AUTOGLM_BENCH_CALL_LOG"  # autoglm.bench.calls: the worker logs every reasoner call there
CLI = [sys.executable, "-m", "autoglm.cli", "--log-level", "WARNING", "run"]


def isolate(base: Settings, run_id: str, name: str) -> Settings:
    """Settings with a private topic prefix and group ids; quotas off and no health port
    (a benchmark measures capacity, and must not collide with a running pipeline's port)."""
    tag = f"{run_id}-{name.replace('_', '-')}"
    return base.model_copy(
        update={
            "topic_prefix": f"{tag}-",
            "stream_app_id": f"{tag}-streams",
            "worker_group_id": f"{tag}-workers",
            "quota_rate_per_s": 0.0,
            "health_port": 0,
        }
    )


def child_env(settings: Settings, echo: bool) -> dict[str, str]:
    """Every setting of the system under test, pinned (a stray variable in the harness's
    environment must not change what is measured), and the bench's echo reasoner or not."""
    env = settings_env(settings)
    if echo:
        env["AUTOGLM_BENCH_REASONER"] = "echo"
    else:
        env.pop("AUTOGLM_BENCH_REASONER", None)
    return env


@dataclass
class System:
    """One system's processes. `start()` returns at once; readiness is probed through Kafka."""

    name: str
    settings: Settings
    log_dir: Path
    echo: bool = False
    workers: int = 1
    streams_health_port: int = 0  # experiments read the controller and router from /metrics
    call_log_dir: Path | None = None  # experiments: workers log every reasoner call (autoglm.bench.calls)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return LABELS[self.name]

    def start(self) -> None:
        if self.name == "pipeline":
            self._spawn("streams", CLI + ["--streams-only"])
            for i in range(1, self.workers + 1):
                self._spawn(f"worker-{i}", self._worker_cmd())
        else:
            kind = {"ceiling": "passthrough"}.get(self.name, self.name)
            self._spawn(self.name, SERVE + [kind])

    def _worker_cmd(self) -> list[str]:
        """The pipeline's worker as `autoglm run` starts it; the bench's own entry (same
        BatchWorker) when the reasoner is swapped or its calls are logged."""
        return SERVE + ["worker"] if self.echo or self.call_log_dir else CLI + ["--workers-only"]

    def _spawn(self, role: str, cmd: list[str]) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{self.name}-{role}.log", "ab")
        env = {**child_env(self.settings, self.echo), "AUTOGLM_WORKER_INSTANCE": f"{self.settings.worker_group_id}-{role}"}
        if role == "streams" and self.streams_health_port:
            env["AUTOGLM_HEALTH_PORT"] = str(self.streams_health_port)
        if role.startswith("worker") and self.call_log_dir:
            self.call_log_dir.mkdir(parents=True, exist_ok=True)
            env[CALL_LOG_ENV] = str(self.call_log_dir / f"{self.name}-{role}.jsonl")
        self.procs[role] = subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT, preexec_fn=_die_with_parent
        )
        log.close()

    def restart_streams(self, batch_window_ms: int) -> None:
        """Pipeline only: a new stream processor with another batch window (the workers,
        with their loaded models, keep running; the group resumes from committed offsets)."""
        update: dict = {"batch_window_ms": batch_window_ms}
        if "adaptive_batching" in Settings.model_fields:
            update["adaptive_batching"] = False  # a fixed window, or the sweep measures the controller
        self.restart_streams_with(update)

    def restart_streams_with(self, update: dict) -> None:
        """Pipeline only: a new stream processor with `update` applied to its settings."""
        self.settings = self.settings.model_copy(update=update)
        proc = self.procs.pop("streams")
        terminate([proc], timeout_s=30)
        self._spawn("streams", CLI + ["--streams-only"])

    def restart_workers_with(self, update: dict) -> None:
        """Pipeline only: new worker processes with `update` applied (they load the model again)."""
        self.settings = self.settings.model_copy(update=update)
        roles = [r for r in self.procs if r.startswith("worker")]
        terminate([self.procs.pop(r) for r in roles], timeout_s=30)
        for role in roles:
            self._spawn(role, self._worker_cmd())

    def respawn_exited(self) -> list[str]:
        """Start again every process of this system that exited; returns their roles."""
        roles = list(self.exited())
        for role in roles:
            cmd = self.procs.pop(role).args
            self._spawn(role, list(cmd))
        return roles

    def pids(self) -> dict[str, int]:
        return {role: p.pid for role, p in self.procs.items() if p.poll() is None}

    def exited(self) -> dict[str, int]:
        return {role: p.returncode for role, p in self.procs.items() if p.poll() is not None}

    def lag_groups(self) -> list[tuple[str, str]]:
        """(consumer group, topic) pairs whose lag is sampled."""
        questions = topic_name(self.settings, QUESTIONS)
        if self.name == "pipeline":
            return [(self.settings.stream_app_id, questions),
                    (self.settings.worker_group_id, topic_name(self.settings, BATCHES))]
        if self.name == "faust_take":
            return [(self.settings.stream_app_id, questions)]
        return [(self.settings.worker_group_id, questions)]

    def batch_max_size(self) -> int | None:
        return {"pipeline": self.settings.batch_max_size, "faust_take": 100, "per_message": 1}.get(self.name)

    def stop(self, timeout_s: float = 30.0) -> None:
        terminate(list(self.procs.values()), timeout_s)
        self.procs.clear()


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM when the harness dies, however it dies (no orphans)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
