"""A PostgreSQL pool with retry: writes wait out a database outage instead of failing.

While the database is down the caller blocks (so the source record stays
unacknowledged and its offset uncommitted); when it returns, work resumes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg

log = logging.getLogger(__name__)

RETRYABLE = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError)


T = TypeVar("T")


async def _with_retry(
    pool: asyncpg.Pool, work: Callable[[asyncpg.Connection], Awaitable[T]], max_backoff_s: float = 5.0
) -> T:
    """Run `work` on a pooled connection, retrying connection failures forever (backoff)."""
    delay = 0.1
    while True:
        try:
            async with pool.acquire() as conn:
                return await work(conn)
        except RETRYABLE as exc:
            log.warning("database unavailable, retrying in %.1fs: %r", delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_backoff_s)


async def executemany_with_retry(pool: asyncpg.Pool, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """Run `sql` for every row in one transaction, retrying connection failures forever."""

    async def work(conn: asyncpg.Connection) -> None:
        async with conn.transaction():
            await conn.executemany(sql, rows)

    await _with_retry(pool, work)


async def create_pool(dsn: str) -> asyncpg.Pool:
    """Open a small pool, waiting for the database if it is not up yet."""
    delay = 0.2
    for _ in range(60):
        try:
            return await asyncpg.create_pool(dsn, min_size=1, max_size=4)
        except RETRYABLE as exc:
            log.warning("database not reachable at start, retrying: %r", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
    raise RuntimeError(
        f"PostgreSQL at {dsn.split('@')[-1]} is unreachable: start it with `autoglm up` or set DATABASE_URL"
    )


@dataclass(frozen=True)
class Claim:
    """What a claim statement found: each key's owner, and the keys it inserted itself."""

    owners: dict[Any, Any]
    won: list[Any]  # keys whose row this statement inserted (a redelivery finds its own: not won)


async def claim_rows(pool: asyncpg.Pool, sql: str, rows: Sequence[tuple[Any, ...]]) -> Claim:
    """Run a claim statement (schemas.rows.CLAIM_ANSWERS) over `rows` passed as one array per
    column, retrying connection failures; its result rows are (key, owner, won).
    One statement in autocommit: one round trip and one commit, whatever the number of rows."""
    if not rows:
        return Claim({}, [])
    columns = [list(column) for column in zip(*rows, strict=True)]
    found = await _with_retry(pool, lambda conn: conn.fetch(sql, *columns))
    return Claim({row[0]: row[1] for row in found}, [row[0] for row in found if row[2]])
