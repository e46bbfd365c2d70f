"""Start and stop the real services (Kafka, PostgreSQL) for local runs, idempotently.

`up` is what `autoglm up`, the tests and the compose `setup` job call: it starts what is not
running, reuses what is, and is a no-op (bar checks) against external services named by
KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL. A warm `up` costs about a second, so callers can run
it unconditionally.
"""

from __future__ import annotations

import time
from pathlib import Path

from runtime.services.kafka import (
    ensure_topics_async,
    kafka_log_file,
    start_kafka,
    stop_kafka,
    wait_for_kafka_async,
)
from runtime.services.migrations import apply_migrations, sync_app_password
from runtime.services.postgres import pg_log_file, start_postgres, stop_postgres
from runtime.services.sync import run_sync
from schemas.settings import Settings, get_settings

__all__ = ["up", "down"]


def _say(part: str, message: str) -> None:
    print(f"{part:<9} {message}", flush=True)


async def _kafka_ready_and_schema(settings: Settings) -> tuple[list[str], list[str]]:
    """Readiness, topics and migrations in one event loop (the slow parts overlap nothing else)."""
    await wait_for_kafka_async(settings)
    created = await ensure_topics_async(settings)
    applied = await apply_migrations(settings.admin_dsn)
    await sync_app_password(settings.admin_dsn, settings.dsn)
    return created, applied


def up(settings: Settings | None = None) -> None:
    """Start (or reuse) Kafka and PostgreSQL, create topics, apply migrations; print what happened.

    The broker is launched first and boots while PostgreSQL starts.
    """
    settings = settings or get_settings()
    t0 = time.monotonic()
    kafka = start_kafka(settings)
    _say("kafka", _describe(kafka, settings.kafka_bootstrap_servers, kafka_log_file(settings)))
    pg = start_postgres(settings)
    _say("postgres", _describe(pg, redact_dsn(settings.dsn), pg_log_file(settings)))
    created, applied = run_sync(_kafka_ready_and_schema(settings))
    _say("kafka", "ready; topics " + (f"created: {', '.join(created)}" if created else "all present"))
    _say("postgres", "migrations " + (f"applied: {', '.join(applied)}" if applied else "up to date"))
    _say("up", f"done in {time.monotonic() - t0:.1f}s")


def down(settings: Settings | None = None) -> None:
    """Stop the local broker and embedded PostgreSQL (external services are left alone)."""
    settings = settings or get_settings()
    _say("kafka", stop_kafka(settings))
    _say("postgres", stop_postgres(settings))


def _describe(status: str, target: str, log_file: Path) -> str:
    """'started (127.0.0.1:9092, log ...)': where it runs and, for local services, where to look."""
    return f"{status} ({target})" if status == "external" else f"{status} ({target}, log {log_file})"


def redact_dsn(dsn: str) -> str:
    """Never print a password from DATABASE_URL."""
    if "@" not in dsn or "://" not in dsn:
        return dsn
    scheme, rest = dsn.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}{':***' if ':' in creds else ''}@{host}"
