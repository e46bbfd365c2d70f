"""Security, against real services: Kafka over SASL_SSL (SCRAM + TLS) on a second, secured
broker (infra/kafka/secure/), PostgreSQL through the least-privilege application role, and
secrets that never reach the logs.

The secured broker is this module's own (state in a tmp dir, 127.0.0.1:9095, controller 9096,
or free ports when those are taken); the shared plain broker on 9092 is not touched.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from pydantic import SecretStr

from runtime.kafka_config import consumer_config, producer_config
from runtime.services import redact_dsn
from runtime.services.kafka import ensure_topics_async, wait_for_kafka_async
from runtime.services.migrations import scram_sha_256_verifier
from runtime.services.sync import run_sync
from schemas.question import Question
from schemas.settings import APP_ROLE, REPO_ROOT, Settings, get_settings
from schemas.topics import BATCHES, QUESTIONS, topic_name

SECURE_DIR = REPO_ROOT / "infra" / "kafka" / "secure"
USER = "autoglm"

pytestmark = pytest.mark.timeout(300)


@dataclass
class SecureBroker:
    settings: Settings  # the right credentials, over TLS
    password: str
    env: dict[str, str]  # what start.sh/stop.sh were called with


def _port(preferred: int, taken: set[int]) -> int:
    """`preferred` when nothing listens there, else a free port from the OS."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            if preferred in taken:
                raise OSError
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _script(name: str, env: dict[str, str]) -> dict[str, str]:
    proc = subprocess.run([str(SECURE_DIR / name)], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, f"infra/kafka/secure/{name} failed:\n{proc.stderr}"
    return dict(f.split("=", 1) for f in proc.stdout.strip().splitlines()[-1].split())


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    """A SASL_SSL-only broker with SCRAM user `autoglm`; topics created through our admin client."""
    root = tmp_path_factory.mktemp("secure")
    password = "scram-" + secrets.token_hex(12)
    port = _port(9095, set())
    controller = _port(9096, {port})
    env = {
        **os.environ,
        "SECURE_STATE": str(root / "kafka"),
        "KAFKA_SCRAM_USERNAME": USER,
        "KAFKA_SCRAM_PASSWORD": password,
        "KAFKA_SECURE_PORT": str(port),
        "KAFKA_SECURE_CONTROLLER_PORT": str(controller),
    }
    started = _script("start.sh", env)
    settings = get_settings().model_copy(
        update={
            "kafka_bootstrap_servers": f"127.0.0.1:{port}",
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": "SCRAM-SHA-512",
            "kafka_sasl_username": USER,
            "kafka_sasl_password": SecretStr(password),
            "kafka_ssl_cafile": Path(started["cafile"]),
            "state_dir": root,  # so wait_for_kafka watches this broker's pid file
            "topic_prefix": "sec-",
            "stream_app_id": "sec-streams",
            "partitions": 1,
        }
    )
    try:
        run_sync(wait_for_kafka_async(settings, timeout_s=90))
        run_sync(ensure_topics_async(settings))
        yield SecureBroker(settings, password, env)
    finally:
        _script("stop.sh", env)


# --- Kafka: SCRAM over TLS ------------------------------------------------------------------


async def test_scram_over_tls_produces_and_consumes(secure: SecureBroker, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    s = secure.settings
    topic = topic_name(s, QUESTIONS)
    producer = AIOKafkaProducer(**producer_config(s, "sec-producer"))
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"hello over SASL_SSL", key=b"k")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, **consumer_config(s, "sec-readers", "sec-consumer"))
    await consumer.start()
    try:
        values = await _read(consumer, until=lambda vs: b"hello over SASL_SSL" in vs)
    finally:
        await consumer.stop()
    assert b"hello over SASL_SSL" in values
    assert secure.password not in caplog.text


async def test_sha256_and_password_file_work_too(secure: SecureBroker, tmp_path: Path) -> None:
    secret_file = tmp_path / "kafka.password"
    secret_file.write_text(secure.password + "\n")
    s = secure.settings.model_copy(
        update={
            "kafka_sasl_mechanism": "SCRAM-SHA-256",
            "kafka_sasl_password": None,
            "kafka_sasl_password_file": secret_file,
        }
    )
    await wait_for_kafka_async(s, timeout_s=20)


@pytest.mark.parametrize(
    "update",
    [{"kafka_sasl_password": SecretStr("not-the-password")}, {"kafka_sasl_username": "mallory"}],
    ids=["wrong-password", "unknown-user"],
)
async def test_wrong_credentials_are_refused(
    secure: SecureBroker, update: dict, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="aiokafka")
    s = secure.settings.model_copy(update=update)
    await _refused(s)
    assert "SaslAuthenticationFailed" in caplog.text and "invalid credentials" in caplog.text


async def test_waiting_for_a_broker_that_refuses_us_fails_fast(secure: SecureBroker) -> None:
    s = secure.settings.model_copy(update={"kafka_sasl_password": SecretStr("not-the-password")})
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="SaslAuthenticationFailed.*AUTOGLM_KAFKA_SASL_"):
        await wait_for_kafka_async(s, timeout_s=60)
    assert time.monotonic() - t0 < 15


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "PLAINTEXT"])
async def test_client_without_tls_is_refused(secure: SecureBroker, protocol: str) -> None:
    await _refused(secure.settings.model_copy(update={"kafka_security_protocol": protocol}))


async def test_broker_with_an_untrusted_certificate_is_refused(
    secure: SecureBroker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="aiokafka")
    await _refused(secure.settings.model_copy(update={"kafka_ssl_cafile": None}))  # system CAs only
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text


async def _refused(settings: Settings) -> None:
    producer = AIOKafkaProducer(**{**producer_config(settings, "sec-refused"), "request_timeout_ms": 10_000})
    t0 = time.monotonic()
    try:
        with pytest.raises(KafkaConnectionError):
            await producer.start()
    finally:
        await producer.stop()
    assert time.monotonic() - t0 < 30


async def _read(consumer: AIOKafkaConsumer, until: Callable[[list[bytes]], bool], timeout_s: float = 30) -> list[bytes]:
    values: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not until(values):
        for records in (await consumer.getmany(timeout_ms=500)).values():
            values += [r.value for r in records]
    return values


# --- secrets never in logs --------------------------------------------------------------------


def test_settings_repr_hides_secrets() -> None:
    s = Settings(
        kafka_sasl_password="kafka-secret-1",
        DATABASE_URL="postgresql://autoglm_app:db-secret-1@db:5432/autoglm",
        database_admin_url="postgresql://autoglm:db-secret-2@db:5432/autoglm",
    )
    for text in (repr(s), str(s), s.model_dump_json(), str(s.model_dump())):
        for secret in ("kafka-secret-1", "db-secret-1", "db-secret-2"):
            assert secret not in text
    assert s.kafka_sasl_secret() == "kafka-secret-1"
    assert "db-secret-1" in s.dsn and "db-secret-2" in s.admin_dsn  # the clients still get them
    assert redact_dsn(s.dsn) == "postgresql://autoglm_app:***@db:5432/autoglm"


def test_stream_processor_logs_no_secret(secure: SecureBroker, services: Settings, tmp_path: Path) -> None:
    """The real stream processor, at DEBUG, over SASL_SSL and with a DB password: batches a
    question, and neither password appears anywhere in its log."""
    s = secure.settings
    db_password = "db-" + secrets.token_hex(12)
    dsn = _with_password(services.dsn, db_password)  # the embedded server trusts loopback
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AUTOGLM_", "KAFKA_"))},
        "AUTOGLM_KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers,
        "AUTOGLM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "AUTOGLM_KAFKA_SASL_USERNAME": USER,
        "AUTOGLM_KAFKA_SASL_PASSWORD": secure.password,
        "AUTOGLM_KAFKA_SSL_CAFILE": str(s.kafka_ssl_cafile),
        "AUTOGLM_DATABASE_URL": dsn,
        "AUTOGLM_STATE_DIR": str(tmp_path),
        "AUTOGLM_TOPIC_PREFIX": s.topic_prefix,
        "AUTOGLM_STREAM_APP_ID": s.stream_app_id,
        "AUTOGLM_PARTITIONS": "1",
        "AUTOGLM_BATCH_WINDOW_MS": "20",
        "AUTOGLM_POSTGRES_PORT": str(services.postgres_port),
    }
    question = Question(
        question_id=uuid.uuid4(), service="sec", user_id="u1", text="who directed [Heat]", ts=int(time.time() * 1000)
    )
    log_file = tmp_path / "streams.log"
    with log_file.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "autoglm.cli", "--log-level", "DEBUG", "run", "--streams-only"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
        )
    try:
        batch = asyncio.run(_ask_and_wait_for_batch(s, question, proc))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    log = log_file.read_text(errors="replace")
    assert batch is not None, f"no batch from the stream processor:\n{log[-4000:]}"
    assert '"level":"debug"' in log and "SASL" in log  # DEBUG really was on, over SASL
    for secret in (secure.password, db_password):
        assert secret not in log, f"a secret leaked into the stream processor's log: {_line_with(log, secret)}"


def _with_password(dsn: str, password: str) -> str:
    parts = urlsplit(dsn)
    if parts.password:
        return dsn
    netloc = f"{parts.username}:{password}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _line_with(log: str, secret: str) -> str:
    return next(line for line in log.splitlines() if secret in line).replace(secret, "<SECRET>")


async def _ask_and_wait_for_batch(s: Settings, question: Question, proc: subprocess.Popen) -> bytes | None:
    producer = AIOKafkaProducer(**producer_config(s, "sec-asker"))
    await producer.start()
    try:
        await producer.send_and_wait(topic_name(s, QUESTIONS), question.to_bytes(), key=b"u1")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic_name(s, BATCHES), **consumer_config(s, None, "sec-batches"))
    await consumer.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:  # the bytes, not Batch: its schema is not this test's business
                    if str(question.question_id).encode() in record.value:
                        return record.value
    finally:
        await consumer.stop()
    return None


# --- PostgreSQL: least privilege ---------------------------------------------------------------


async def test_app_role_writes_rows_but_runs_no_ddl(services: Settings) -> None:
    if services.postgres_is_external:
        pytest.skip("DATABASE_URL names its own role")
    conn = await asyncpg.connect(services.dsn)
    qid = uuid.uuid4()
    try:
        role = await conn.fetchrow(
            "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user"
        )
        assert tuple(role) == (APP_ROLE, False, False, False)
        await conn.execute(
            "INSERT INTO answers (question_id, batch_id, service, user_id, text, status, answers,"
            " paths, confidence, model_name, model_version, latency, question_ts, answered_ts, payload)"
            " VALUES ($1, $2, 'sec', 'u', 'q', 'ok', '[]', '[]', 1, 'm', '1', '{}', 0, 0, '{}')",
            qid,
            uuid.uuid4(),
        )
        await conn.execute("UPDATE answers SET status = 'error' WHERE question_id = $1", qid)
        assert await conn.fetchval("SELECT status FROM answers WHERE question_id = $1", qid) == "error"
        for ddl in (
            "CREATE TABLE sec_probe (x int)",
            "DROP TABLE answers",
            "ALTER TABLE answers ADD COLUMN sec_probe int",
            "TRUNCATE answers",
            "CREATE INDEX sec_probe ON answers (text)",
            "CREATE DATABASE sec_probe",
            "INSERT INTO schema_migrations (version, name) VALUES (9999, 'sec_probe')",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(ddl)
    finally:
        await conn.execute("DELETE FROM answers WHERE question_id = $1", qid)
        await conn.close()


async def test_app_password_verifier_matches_postgres(services: Settings) -> None:
    """`autoglm up` sends the app role's password as a SCRAM verifier; it must be the one
    PostgreSQL itself would store for that password and salt."""
    if services.postgres_is_external:
        pytest.skip("reads pg_authid, which needs the embedded server's superuser")
    role, password = f"sec_probe_{uuid.uuid4().hex[:8]}", "pässwörd-" + secrets.token_hex(4)
    admin = await asyncpg.connect(services.admin_dsn)
    try:
        await admin.execute(
            f"SET password_encryption = 'scram-sha-256'; CREATE ROLE {role} LOGIN PASSWORD '{password}'"
        )
        stored = await admin.fetchval("SELECT rolpassword FROM pg_authid WHERE rolname = $1", role)
        iterations, salt = re.match(r"SCRAM-SHA-256\$(\d+):([^$]+)\$", stored).groups()
        assert scram_sha_256_verifier(password, int(iterations), salt=salt) == stored
        ours = scram_sha_256_verifier(password)
        await admin.execute(f"ALTER ROLE {role} PASSWORD '{ours}'")
        assert await admin.fetchval("SELECT rolpassword FROM pg_authid WHERE rolname = $1", role) == ours
    finally:
        await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()
