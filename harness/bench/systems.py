"""The systems under test as child processes, each with its own topics and group ids.

* `ceiling`     - raw Kafka pass-through (harness.bench.passthrough), no model
* `per_message` - baseline (a), harness.bench.per_message
* `faust_take`  - baseline (b), harness.bench.faust_take
* `pipeline`    - (c) this system: `python -m streams` and `python -m workers`
                  processes, as `autoglm run` starts them

Settings reach a child through the environment: the harness's own environment plus the
`AUTOGLM_*` values it changes (topic prefix, app and group ids, batch window, reasoner).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness import isolation
from runtime.fleet import Fleet, role_command
from schemas.settings import Settings
from schemas.topics import BATCHES, QUESTIONS, topic_name

SYSTEMS = ("ceiling", "per_message", "faust_take", "pipeline")
LABELS = {
    "ceiling": "Kafka pass-through (ceiling)",
    "per_message": "(a) per-message aiokafka loop",
    "faust_take": "(b) Faust stream.take(100, within=0.05)",
    "pipeline": "(c) this system",
}
SERVE = [sys.executable, "-m", "harness.bench.serve"]
CALL_LOG_ENV = "AUTOGLM_BENCH_CALL_LOG"  # harness.bench.calls: the worker logs every reasoner call there


def isolate(base: Settings, run_id: str, name: str) -> Settings:
    """Private topics and groups for one system of run `run_id` (harness.isolation); quotas
    off and no health port (a benchmark measures capacity, and must not collide with a
    running pipeline's port)."""
    return isolation.isolate(base, f"{run_id}-{name}", quota_rate_per_s=0.0, health_port=0)


@dataclass
class System:
    """One system's processes. `start()` returns at once; readiness is probed through Kafka."""

    name: str
    settings: Settings
    log_dir: Path
    echo: bool = False
    workers: int = 1
    streams_health_port: int = 0  # experiments read the controller and router from /metrics
    call_log_dir: Path | None = None  # experiments: workers log every reasoner call (harness.bench.calls)
    fleet: Fleet = field(init=False)

    def __post_init__(self) -> None:
        self.fleet = Fleet(self.settings, self.log_dir, log_level="WARNING")

    @property
    def label(self) -> str:
        return LABELS[self.name]

    def start(self) -> None:
        if self.name == "pipeline":
            self._spawn("streams", role_command("streams", "WARNING"))
            for i in range(1, self.workers + 1):
                self._spawn(f"worker-{i}", self._worker_cmd())
        else:
            kind = {"ceiling": "passthrough"}.get(self.name, self.name)
            self._spawn(self.name, SERVE + [kind])

    def _worker_cmd(self) -> list[str]:
        """The pipeline's worker as `autoglm run` starts it; the bench's own entry (same
        BatchWorker) when the reasoner is swapped or its calls are logged."""
        return SERVE + ["worker"] if self.echo or self.call_log_dir else role_command("workers", "WARNING")

    def _spawn(self, role: str, cmd: list[str]) -> None:
        """Start `role` with every setting of the system under test pinned (a stray variable
        in the harness's environment must not change what is measured)."""
        env = {
            "AUTOGLM_WORKER_INSTANCE": f"{self.settings.worker_group_id}-{role}",
            "AUTOGLM_BENCH_REASONER": "echo" if self.echo else "",
        }
        if role == "streams" and self.streams_health_port:
            env["AUTOGLM_HEALTH_PORT"] = str(self.streams_health_port)
        if role.startswith("worker") and self.call_log_dir:
            self.call_log_dir.mkdir(parents=True, exist_ok=True)
            env[CALL_LOG_ENV] = str(self.call_log_dir / f"{self.name}-{role}.jsonl")
        self.fleet.start(f"{self.name}-{role}", role, cmd, env)

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
        self.fleet.configure(**update)
        self.fleet.terminate(f"{self.name}-streams")
        self._spawn("streams", role_command("streams", "WARNING"))

    def restart_workers_with(self, update: dict) -> None:
        """Pipeline only: new worker processes with `update` applied (they load the model again)."""
        self.settings = self.settings.model_copy(update=update)
        self.fleet.configure(**update)
        roles = [s.role for s in self.fleet.slots.values() if s.role.startswith("worker")]
        for role in roles:
            self.fleet.terminate(f"{self.name}-{role}")
        for role in roles:
            self._spawn(role, self._worker_cmd())

    def respawn_exited(self) -> list[str]:
        """Start again every process of this system that exited; returns their roles."""
        roles = list(self.exited())
        self.fleet.reap()
        return roles

    def pids(self) -> dict[str, int]:
        return {self.fleet.slots[name].role: pid for name, pid in self.fleet.pids().items()}

    def exited(self) -> dict[str, int]:
        return {self.fleet.slots[name].role: rc for name, rc in self.fleet.exited().items()}

    def lag_groups(self) -> list[tuple[str, str]]:
        """(consumer group, topic) pairs whose lag is sampled."""
        questions = topic_name(self.settings, QUESTIONS)
        if self.name == "pipeline":
            return [
                (self.settings.stream_app_id, questions),
                (self.settings.worker_group_id, topic_name(self.settings, BATCHES)),
            ]
        if self.name == "faust_take":
            return [(self.settings.stream_app_id, questions)]
        return [(self.settings.worker_group_id, questions)]

    def batch_max_size(self) -> int | None:
        return {"pipeline": self.settings.batch_max_size, "faust_take": 100, "per_message": 1}.get(self.name)

    def stop(self, timeout_s: float = 30.0) -> None:
        self.fleet.stop_all(timeout_s)
        self.fleet.stopping = False  # the system can be started again
