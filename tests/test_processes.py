"""`runtime.fleet.settings_env`: a child process reads back exactly the parent's settings."""

from __future__ import annotations

import os

import pytest
from pydantic import SecretStr

from runtime.fleet import settings_env
from schemas.settings import Settings


def test_a_child_reads_back_every_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    parent = Settings(
        kafka_sasl_password=SecretStr("s3cret"),
        quota_overrides={"svc-a": (2.5, 10.0)},
        batch_window_ms=7,
        load_aware_routing=False,
        topic_prefix="child-env-test",
    )
    env = settings_env(parent)
    for name in [k for k in os.environ if k.startswith("AUTOGLM_") or k == "KAFKA_BOOTSTRAP_SERVERS"]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith("AUTOGLM_"):
            monkeypatch.setenv(name, value)
    child = Settings()
    assert env["AUTOGLM_KAFKA_SASL_PASSWORD"] == "s3cret"  # revealed, not "**********"
    assert child.kafka_sasl_password is not None and child.kafka_sasl_password.get_secret_value() == "s3cret"
    assert child.quota_overrides == {"svc-a": (2.5, 10.0)}  # JSON, not Python's repr
    assert child.dsn == parent.dsn
    for name in type(parent).model_fields:
        if name not in ("kafka_sasl_password", "database_url", "database_admin_url", "worker_instance"):
            assert getattr(child, name) == getattr(parent, name), name
