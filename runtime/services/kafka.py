"""The local Kafka broker: start/stop through infra/kafka/*.sh, readiness and topics via aiokafka.

The shell scripts own the process (so `make`, the CLI and humans share one implementation);
Python owns what needs the Kafka protocol: readiness is a real metadata request, and topics are
created explicitly because the broker runs with auto.create.topics.enable=false.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from runtime.kafka_config import common_config
from runtime.services.sync import run_sync
from schemas.settings import REPO_ROOT, Settings
from schemas.topics import TopicSpec, topic_specs

INFRA_DIR = REPO_ROOT / "infra" / "kafka"
TOPIC_ALREADY_EXISTS = 36

log = logging.getLogger(__name__)


def kafka_state_dir(settings: Settings) -> Path:
    """Folder holding the broker's data, pid file, log and cached classpath."""
    return settings.state_dir / "kafka"


def kafka_log_file(settings: Settings) -> Path:
    """The broker's stdout/stderr: the first place to look when it does not come up."""
    return kafka_state_dir(settings) / "kafka.log"


def kafka_pid(settings: Settings) -> int | None:
    """Pid of the local broker from its pid file when that process is alive, else None."""
    try:
        pid = int((kafka_state_dir(settings) / "kafka.pid").read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _run_script(name: str, settings: Settings) -> str:
    """Run infra/kafka/<name> for this state dir and return the status from its last stdout line."""
    env = {**os.environ, "AUTOGLM_STATE_DIR": str(settings.state_dir)}
    proc = subprocess.run([str(INFRA_DIR / name)], env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(
            f"infra/kafka/{name} failed (exit {proc.returncode}):\n{proc.stderr.strip()}\n"
            f"Broker log: {kafka_log_file(settings)}"
        )
    fields = dict(f.split("=", 1) for f in proc.stdout.strip().splitlines()[-1].split())
    return fields["status"]


def start_kafka(settings: Settings) -> str:
    """Start the local broker unless KAFKA_BOOTSTRAP_SERVERS names one: 'external'|'reused'|'started'.

    Returns before the broker is ready; call wait_for_kafka next.
    """
    if settings.kafka_is_external:
        return "external"
    return _run_script("start.sh", settings)


def stop_kafka(settings: Settings) -> str:
    """Stop the local broker (SIGTERM, then SIGKILL after a timeout): 'external'|'stopped'."""
    if settings.kafka_is_external:
        return "external"
    return _run_script("stop.sh", settings)


def _admin(settings: Settings, request_timeout_ms: int = 10_000) -> AIOKafkaAdminClient:
    """An admin client for the configured cluster."""
    return AIOKafkaAdminClient(**common_config(settings), request_timeout_ms=request_timeout_ms)


# The broker answered and refused us: waiting longer cannot help.
_REFUSALS = ("SaslAuthenticationFailed", "UnsupportedSaslMechanism", "CERTIFICATE_VERIFY_FAILED")


class _LastError(logging.Handler):
    """Keeps the last aiokafka warning or error (they name the reason; the raised error does not)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.message: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.message = record.getMessage()

    @property
    def refused(self) -> bool:
        return self.message is not None and any(r in self.message for r in _REFUSALS)


@contextmanager
def _quiet_aiokafka() -> Iterator[_LastError]:
    """Connection-refused errors are expected while a broker boots; keep the last, print none."""
    logger = logging.getLogger("aiokafka")
    captured, propagate = _LastError(), logger.propagate
    logger.addHandler(captured)
    logger.propagate = False
    try:
        yield captured
    finally:
        logger.removeHandler(captured)
        logger.propagate = propagate


async def _cluster_ready(settings: Settings) -> None:
    """One metadata round trip; raises unless a broker and an active controller are reported."""
    admin = _admin(settings, request_timeout_ms=5_000)
    try:
        await admin.start()
        meta = await admin.describe_cluster()
    finally:
        await admin.close()
    if not meta["brokers"] or meta.get("controller_id", -1) < 0:
        raise RuntimeError(f"cluster not ready yet: {meta}")


async def wait_for_kafka_async(settings: Settings, timeout_s: float = 120) -> None:
    """Poll with metadata requests until the cluster answers; fail fast if our broker died."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    with _quiet_aiokafka() as aiokafka_log:
        while time.monotonic() < deadline:
            try:
                await _cluster_ready(settings)
                return
            except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
                last = exc
            if aiokafka_log.refused:
                raise RuntimeError(
                    f"Kafka at {settings.kafka_bootstrap_servers} refused this client: "
                    f"{aiokafka_log.message}. Check AUTOGLM_KAFKA_SECURITY_PROTOCOL, "
                    "AUTOGLM_KAFKA_SASL_* and AUTOGLM_KAFKA_SSL_CAFILE."
                )
            if not settings.kafka_is_external and kafka_pid(settings) is None:
                raise RuntimeError(
                    "No local Kafka broker is running (it exited while starting, or was never "
                    f"started). Read {kafka_log_file(settings)}, fix the cause, then run `autoglm up`."
                )
            await asyncio.sleep(0.25)
    where = (
        "the cluster named by KAFKA_BOOTSTRAP_SERVERS"
        if settings.kafka_is_external
        else f"the local broker; its log is {kafka_log_file(settings)}"
    )
    raise TimeoutError(
        f"Kafka at {settings.kafka_bootstrap_servers} did not answer a metadata request within "
        f"{timeout_s:.0f}s (last error: {last!r}; {aiokafka_log.message}). Check {where}."
    )


def wait_for_kafka(settings: Settings, timeout_s: float = 120) -> None:
    """Block until Kafka answers metadata requests (see wait_for_kafka_async)."""
    run_sync(wait_for_kafka_async(settings, timeout_s))


def _check_partitions(specs: list[TopicSpec], described: list[dict]) -> None:
    """Existing topics are kept as they are, but a partition mismatch deserves a warning.

    Only topics the broker fully describes count: one created a moment ago may still answer
    with an error and no partitions while its metadata propagates."""
    by_name = {t["topic"]: len(t["partitions"]) for t in described if t.get("error_code", 0) == 0}
    for spec in specs:
        have = by_name.get(spec.name)
        if have is not None and have != spec.partitions:
            log.warning(
                "topic %s has %d partitions, settings ask for %d; delete it or change settings",
                spec.name,
                have,
                spec.partitions,
            )


async def _wait_for_leaders(admin: AIOKafkaAdminClient, wanted: dict[str, int], timeout_s: float = 30.0) -> None:
    """Return once every new topic has all its partitions led: a client that reads metadata
    earlier sees a topic with no partitions and (assigning by hand) would read nothing."""
    deadline = time.monotonic() + timeout_s
    while True:
        described = await admin.describe_topics(list(wanted))
        ready = {
            t["topic"]
            for t in described
            if t.get("error_code", 0) == 0
            and len(t["partitions"]) == wanted.get(t["topic"])
            and all(p.get("leader", -1) >= 0 for p in t["partitions"])
        }
        if ready >= set(wanted):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"topics {sorted(set(wanted) - ready)} have no partition leaders after {timeout_s:.0f}s; "
                "see the broker log (autoglm up prints where)"
            )
        await asyncio.sleep(0.2)


async def ensure_topics_async(settings: Settings) -> list[str]:
    """Create every topic of schemas.topics.topic_specs that is missing; return the created names."""
    specs = topic_specs(settings)
    admin = _admin(settings, request_timeout_ms=30_000)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        created: list[str] = []
        if missing:
            response = await admin.create_topics(
                [NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=s.config) for s in missing],
                timeout_ms=30_000,
            )
            for err in response.to_object()["topic_errors"]:
                if err["error_code"] == 0:
                    created.append(err["topic"])
                elif err["error_code"] != TOPIC_ALREADY_EXISTS:  # lost a race: fine
                    raise RuntimeError(
                        f"creating topic {err['topic']} failed: error {err['error_code']} {err['error_message']}"
                    )
        kept = [s for s in specs if s.name in existing]
        if kept:
            _check_partitions(kept, await admin.describe_topics([s.name for s in kept]))
        if created:
            await _wait_for_leaders(admin, {s.name: s.partitions for s in specs if s.name in created})
    finally:
        await admin.close()
    return created


def ensure_topics(settings: Settings) -> list[str]:
    """Create missing topics idempotently (see ensure_topics_async)."""
    return run_sync(ensure_topics_async(settings))


async def delete_topics_async(settings: Settings, prefix: str | None = None) -> list[str]:
    """Delete every topic whose name starts with `prefix` (default: the settings' topic
    prefix); return the deleted names. For the private topics of a test, a benchmark or a
    chaos run: left behind, they piled up to 4,280 partitions on a developer's broker,
    which then spent CPU on them that every later measurement paid for. An empty prefix
    is refused: it would name the system's own topics."""
    prefix = settings.topic_prefix if prefix is None else prefix
    if not prefix:
        raise ValueError("refusing to delete topics without a prefix (that would be every topic)")
    admin = _admin(settings, request_timeout_ms=30_000)
    try:
        await admin.start()
        mine = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if mine:
            await admin.delete_topics(mine, timeout_ms=30_000)
        return mine
    finally:
        await admin.close()


def delete_topics(settings: Settings, prefix: str | None = None) -> list[str]:
    """Delete a run's private topics (see delete_topics_async)."""
    return run_sync(delete_topics_async(settings, prefix))
