"""`python -m runtime.services up|down|health`: service control without the full CLI.

`health` is the docker-compose health check of the streams and worker containers: it exits 0
only when Kafka answers a metadata request and PostgreSQL answers `SELECT 1`.
"""

from __future__ import annotations

import asyncio
import sys

import asyncpg

from runtime.services import down, up
from runtime.services.kafka import wait_for_kafka_async
from schemas.settings import get_settings


async def _health() -> None:
    settings = get_settings()
    await wait_for_kafka_async(settings, timeout_s=5)
    conn = await asyncpg.connect(settings.dsn, timeout=5)
    try:
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close()


def main(argv: list[str]) -> int:
    """Dispatch one command; errors print one line that says what failed."""
    command = argv[0] if argv else ""
    try:
        if command == "up":
            up()
        elif command == "down":
            down()
        elif command == "health":
            asyncio.run(_health())
        else:
            print("usage: python -m runtime.services up|down|health", file=sys.stderr)
            return 2
    except Exception as exc:  # noqa: BLE001 - a CLI reports, it does not trace
        print(f"runtime.services {command}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
