"""Infra checks: docker-compose.yml stays consistent with infra/ and settings, and the local
services behave as `autoglm up` promises (idempotent, reusing what runs, migrations once)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET

import asyncpg
import pytest
import yaml
from aiokafka.admin import AIOKafkaAdminClient

from runtime.services import up
from runtime.services.kafka import kafka_pid, start_kafka
from runtime.services.migrations import apply_migrations, discover
from runtime.services.postgres import running_port
from schemas.settings import REPO_ROOT, Settings, get_settings
from schemas.topics import topic_specs

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
POM_FILE = REPO_ROOT / "infra" / "kafka" / "pom.xml"
SERVER_PROPERTIES = REPO_ROOT / "infra" / "kafka" / "server.properties"
APP_SERVICES = ("streams", "worker")
# Broker settings that must be the same for the local broker and the compose one.
SHARED_BROKER_KEYS = (
    "offsets.topic.replication.factor",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "group.initial.rebalance.delay.ms",
    "auto.create.topics.enable",
    "num.partitions",
    "process.roles",
    "node.id",
)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _settings_env_names() -> set[str]:
    """The environment variable names Settings reads: aliases where declared, else AUTOGLM_<FIELD>."""
    names: set[str] = set()
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        choices = getattr(alias, "choices", None)
        names.update(choices if choices else [f"AUTOGLM_{field_name.upper()}"])
    return names


def _pom_kafka_version() -> str:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    return ET.parse(POM_FILE).getroot().find("m:properties/m:kafka.version", ns).text.strip()


def _server_properties() -> dict[str, str]:
    props = {}
    for line in SERVER_PROPERTIES.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            props[key.strip()] = value.strip()
    return props


# --- docker-compose.yml consistency -------------------------------------------------------


def test_compose_has_the_services(compose: dict) -> None:
    assert {"kafka", "postgres", *APP_SERVICES} <= set(compose["services"])
    assert compose["services"]["postgres"]["image"] == "pgvector/pgvector:pg18"
    for name in APP_SERVICES:
        assert compose["services"][name]["build"]["dockerfile"] == "infra/Dockerfile"
    assert (REPO_ROOT / "infra" / "Dockerfile").is_file()


def test_every_long_running_service_has_a_healthcheck(compose: dict) -> None:
    for name, service in compose["services"].items():
        if service.get("restart") == "no":  # one-shot jobs are waited on by exit code instead
            continue
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"


def test_depends_on_uses_conditions(compose: dict) -> None:
    services = compose["services"]
    for name, service in services.items():
        deps = service.get("depends_on", {})
        assert isinstance(deps, dict), f"{name}: depends_on must be a mapping with conditions"
        for dep, spec in deps.items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            cond = spec["condition"]
            if services[dep].get("restart") == "no":
                assert cond == "service_completed_successfully", f"{name} -> {dep}: {cond}"
            else:
                assert cond == "service_healthy", f"{name} -> {dep}: {cond}"
    for name in APP_SERVICES:
        deps = services[name]["depends_on"]
        assert deps["kafka"]["condition"] == deps["postgres"]["condition"] == "service_healthy"


def test_kafka_image_matches_pom_version(compose: dict) -> None:
    image = compose["services"]["kafka"]["image"]
    assert image.startswith("apache/kafka:")
    assert image.split(":", 1)[1] == _pom_kafka_version()


def test_compose_broker_settings_match_local_broker(compose: dict) -> None:
    env = compose["services"]["kafka"]["environment"]
    local = _server_properties()
    for key in SHARED_BROKER_KEYS:
        compose_value = str(env["KAFKA_" + key.upper().replace(".", "_")]).lower()
        assert compose_value == local[key].lower(), key
    assert "INTERNAL://kafka:19092" in env["KAFKA_ADVERTISED_LISTENERS"]


def test_app_env_names_are_the_settings_names(compose: dict) -> None:
    known = _settings_env_names()
    for name in APP_SERVICES:
        env = compose["services"][name]["environment"]
        assert {"KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL"} <= set(env), name
        assert set(env) <= known, f"{name}: {set(env) - known} are not read by schemas/settings.py"
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:19092"
        assert "@postgres:5432/" in env["DATABASE_URL"]


def test_app_commands(compose: dict) -> None:
    assert compose["services"]["streams"]["command"] == ["autoglm", "run", "--streams-only"]
    assert compose["services"]["worker"]["command"][:3] == ["autoglm", "run", "--workers-only"]


def _docker_compose_works() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
    return probe.returncode == 0


def test_docker_compose_config_is_valid() -> None:
    if not _docker_compose_works():
        pytest.skip("docker CLI with the compose plugin is not available here")
    proc = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


# --- local services -------------------------------------------------------------------------


def test_migration_files_are_numbered() -> None:
    migrations = discover()
    assert migrations and [m.version for m in migrations] == sorted({m.version for m in migrations})


def test_second_up_reuses_everything(capsys: pytest.CaptureFixture[str]) -> None:
    settings = get_settings()
    up(settings)  # usually already up (make test runs `autoglm up` first)
    broker, postmaster = kafka_pid(settings), running_port(settings)
    capsys.readouterr()
    t0 = time.monotonic()
    up(settings)
    elapsed = time.monotonic() - t0
    out = capsys.readouterr().out
    if not settings.kafka_is_external:
        assert broker is not None and kafka_pid(settings) == broker
        assert "kafka     reused" in out
        assert start_kafka(settings) == "reused"
    if not settings.postgres_is_external:
        assert postmaster == settings.postgres_port == running_port(settings)
    assert elapsed < 10, f"a warm up took {elapsed:.1f}s"


async def test_topics_exist_with_their_partitions() -> None:
    settings = get_settings()
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        described = {t["topic"]: t for t in await admin.describe_topics()}
    finally:
        await admin.close()
    for spec in topic_specs(settings):
        assert spec.name in described, spec.name
        assert len(described[spec.name]["partitions"]) == spec.partitions


async def test_migrations_are_recorded_and_idempotent() -> None:
    settings = get_settings()
    assert await apply_migrations(settings.admin_dsn) == []
    conn = await asyncpg.connect(settings.dsn)
    try:
        rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
    finally:
        await conn.close()
    assert [r["version"] for r in rows] == [m.version for m in discover()]


async def test_concurrent_migrations_on_a_fresh_database_apply_once() -> None:
    settings = get_settings()
    if settings.postgres_is_external:
        pytest.skip("creates a scratch database; only done on the embedded server")
    name = f"autoglm_mig_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(settings.admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        dsn = settings.admin_dsn.rsplit("/", 1)[0] + f"/{name}"
        results = await asyncio.gather(*(apply_migrations(dsn) for _ in range(3)))
        expected = [m.path.name for m in discover()]
        assert sorted(results, key=len) == [[], [], expected]
        assert await apply_migrations(dsn) == []
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def test_pgvector_is_available() -> None:
    conn = await asyncpg.connect(get_settings().dsn)
    try:
        version = await conn.fetchval("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'")
    finally:
        await conn.close()
    if version is None and os.environ.get("DATABASE_URL"):
        pytest.skip("the external PostgreSQL has no pgvector")
    assert version is not None, "pgvector missing from the embedded PostgreSQL"


def test_a_runs_private_topics_are_deleted_by_prefix(services: Settings) -> None:
    """Tests, benchmarks and chaos runs remove their topics; the system's own are never named."""
    import uuid

    from aiokafka.admin import AIOKafkaAdminClient

    from runtime.kafka_config import common_config
    from runtime.services.kafka import delete_topics, ensure_topics
    from runtime.services.sync import run_sync
    from schemas.topics import topic_specs

    mine = services.model_copy(update={"topic_prefix": f"del{uuid.uuid4().hex[:8]}-", "partitions": 1})
    created = set(ensure_topics(mine))
    assert created == {spec.name for spec in topic_specs(mine)}
    assert set(delete_topics(mine)) == created

    async def names() -> set[str]:
        admin = AIOKafkaAdminClient(**common_config(services))
        await admin.start()
        try:
            return set(await admin.list_topics())
        finally:
            await admin.close()

    # the controller has deleted them when delete_topics returns; the broker's metadata, which
    # answers list_topics, follows a moment later (a fresh-clone CI saw them listed once)
    deadline = time.monotonic() + 15.0
    left = run_sync(names())
    while created & left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = run_sync(names())
    assert not created & left
    assert {spec.name for spec in topic_specs(services)} <= left  # the system's topics stay
    with pytest.raises(ValueError, match="without a prefix"):
        delete_topics(services.model_copy(update={"topic_prefix": ""}))  # would name the system's topics
