"""Which Kafka and PostgreSQL processes serve the run: a step during which either was
restarted (other people's chaos tests share this machine) is measured again."""

from __future__ import annotations

from runtime.services.kafka import kafka_pid
from runtime.services.postgres import pg_data_dir
from schemas.settings import Settings


def postgres_pid(settings: Settings) -> int | None:
    """The embedded postmaster's pid from its pid file, or None (external or not running)."""
    if settings.postgres_is_external:
        return None
    try:
        return int((pg_data_dir(settings) / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def service_pids(settings: Settings) -> tuple[int | None, int | None]:
    """(Kafka broker pid, PostgreSQL pid) of the local services; None where external."""
    broker = None if settings.kafka_is_external else kafka_pid(settings)
    return broker, postgres_pid(settings)
