"""SQL migrations: schemas/migrations/NNNN_name.sql applied once each, in order.

Tracked in schema_migrations(version, name, applied_at). Migrations run as the owner role
(settings.admin_dsn); the application connects as the least-privilege role of
0002_app_role.sql. Any process may call apply_migrations at start; a session advisory lock
serialises them so two processes starting at once neither race on CREATE TABLE nor apply a
file twice.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import asyncpg

from schemas.settings import APP_ROLE, REPO_ROOT

MIGRATIONS_DIR = REPO_ROOT / "schemas" / "migrations"
# Any constant bigint works; this one spells "autoglm" in ASCII so it is easy to spot in pg_locks.
ADVISORY_LOCK_KEY = 0x6175746F676C6D
_FILE_RE = re.compile(r"^(\d+)_(.+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One SQL file: its number orders it and is its identity in schema_migrations."""

    version: int
    name: str
    path: Path


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """All NNNN_name.sql files sorted by version; duplicate numbers are a mistake to fix now."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_RE.match(path.name)
        if not match:
            raise ValueError(f"{path} is not named NNNN_name.sql; rename it.")
        version = int(match.group(1))
        if version in found:
            raise ValueError(f"{path} and {found[version].path} share version {version}; renumber one.")
        found[version] = Migration(version, match.group(2), path)
    return [found[v] for v in sorted(found)]


async def apply_migrations(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations, each in its own transaction; return the file names applied."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY)
        try:
            return await _apply_pending(conn, discover(directory))
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)
    finally:
        await conn.close()


async def _apply_pending(conn: asyncpg.Connection, migrations: list[Migration]) -> list[str]:
    """Under the lock: create the tracking table, then run what it does not list yet."""
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version int PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
    applied: list[str] = []
    for m in migrations:
        if m.version in done:
            continue
        async with conn.transaction():
            try:
                await conn.execute(m.path.read_text())
            except asyncpg.PostgresError as exc:
                raise RuntimeError(f"migration {m.path.name} failed: {exc}; fix the file and rerun.") from exc
            await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name)
        applied.append(m.path.name)
    return applied


async def sync_app_password(admin_dsn: str, app_dsn: str) -> bool:
    """Give the application role the password its DSN carries (servers that check passwords).

    Only when app_dsn logs in as APP_ROLE with a password; returns whether it set one. The
    password is sent as a SCRAM verifier computed here, so the server never sees (or logs) it.
    """
    parts = urlsplit(app_dsn)
    if unquote(parts.username or "") != APP_ROLE or not parts.password:
        return False
    verifier = scram_sha_256_verifier(unquote(parts.password))
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f"ALTER ROLE {APP_ROLE} PASSWORD '{verifier}'")
    finally:
        await conn.close()
    return True


def scram_sha_256_verifier(password: str, iterations: int = 4096, salt: str | None = None) -> str:
    """PostgreSQL's stored form of a SCRAM-SHA-256 password (RFC 5802/7677, as libpq's
    PQencryptPasswordConn makes it); contains only base64 characters, '$' and ':'.

    NFKC stands in for SASLprep (identical for passwords without unusual code points).
    """
    raw_salt = base64.b64decode(salt) if salt else os.urandom(16)
    normalized = unicodedata.normalize("NFKC", password).encode()
    salted = hashlib.pbkdf2_hmac("sha256", normalized, raw_salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    salt_b64, stored_b64, server_b64 = (base64.b64encode(b).decode() for b in (raw_salt, stored_key, server_key))
    return f"SCRAM-SHA-256${iterations}:{salt_b64}${stored_b64}:{server_b64}"
