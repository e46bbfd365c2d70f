"""Kafka client configuration derived from settings (pure: builds dicts, opens nothing).

One place decides acks, idempotence and security so every producer in the system
follows the delivery rules in DESIGN.md.
"""

from __future__ import annotations

from typing import Any

from schemas.settings import Settings


def common_config(settings: Settings) -> dict[str, Any]:
    """Bootstrap servers and security options for any aiokafka client."""
    return {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
    }


def producer_config(settings: Settings, client_id: str) -> dict[str, Any]:
    """acks=all with idempotence: a retried send can never write a record twice."""
    return {
        **common_config(settings),
        "client_id": client_id,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 2,
        "max_batch_size": 1024 * 1024,
        "max_request_size": 4 * 1024 * 1024,
        "request_timeout_ms": 30_000,
    }


def consumer_config(settings: Settings, group_id: str | None, client_id: str) -> dict[str, Any]:
    """Manual commits only: offsets move after the effects of a record are durable."""
    return {
        **common_config(settings),
        "client_id": client_id,
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
        "max_poll_interval_ms": 300_000,
        "session_timeout_ms": 10_000,
        "heartbeat_interval_ms": 3_000,
    }
