"""Kafka client configuration derived from settings (builds dicts, connects to nothing).

One place decides acks, idempotence and security so every producer in the system
follows the delivery rules (docs/design.md, "Delivery rules"). The only I/O is reading the TLS files and the
SASL password file named in settings.
"""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka.helpers import create_ssl_context

from schemas.settings import Settings


def common_config(settings: Settings) -> dict[str, Any]:
    """Bootstrap servers and security options for any aiokafka client."""
    return {"bootstrap_servers": settings.kafka_bootstrap_servers, **security_config(settings)}


def security_config(settings: Settings) -> dict[str, Any]:
    """security_protocol and, as it requires, ssl_context and the SASL mechanism and login."""
    protocol = settings.kafka_security_protocol
    config: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        config["ssl_context"] = ssl_context(settings)
    if protocol.startswith("SASL_"):
        if not settings.kafka_sasl_username:
            raise ValueError(f"kafka_security_protocol={protocol} needs AUTOGLM_KAFKA_SASL_USERNAME.")
        config["sasl_mechanism"] = settings.kafka_sasl_mechanism
        config["sasl_plain_username"] = settings.kafka_sasl_username
        config["sasl_plain_password"] = settings.kafka_sasl_secret()
    return config


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """Verifies the broker against kafka_ssl_cafile (else the system CAs), hostname included."""
    return create_ssl_context(
        cafile=settings.kafka_ssl_cafile,
        certfile=settings.kafka_ssl_certfile,
        keyfile=settings.kafka_ssl_keyfile,
    )


def producer_config(settings: Settings, client_id: str) -> dict[str, Any]:
    """acks=all with idempotence: a retried send can never write a record twice. Record
    batches are compressed with `kafka_compression` (docs/serving.md#compression)."""
    return {
        **common_config(settings),
        "client_id": client_id,
        "acks": "all",
        "enable_idempotence": True,
        "compression_type": compression_type(settings),
        "linger_ms": settings.kafka_linger_ms,
        "max_batch_size": 1024 * 1024,
        "max_request_size": 4 * 1024 * 1024,
        "request_timeout_ms": 30_000,
    }


def compression_type(settings: Settings) -> str | None:
    """`kafka_compression` as aiokafka names it (None: uncompressed). lz4 and zstd need the
    cramjam codecs (aiokafka's lz4/zstd extras, a dependency of the project): without them
    aiokafka refuses to build the producer, and a consumer cannot read such batches."""
    return None if settings.kafka_compression == "none" else settings.kafka_compression


def consumer_config(settings: Settings, group_id: str | None, client_id: str) -> dict[str, Any]:
    """Manual commits only: offsets move after the effects of a record are durable."""
    return {
        **common_config(settings),
        "client_id": client_id,
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
        "fetch_max_wait_ms": settings.kafka_fetch_max_wait_ms,
        "fetch_min_bytes": settings.kafka_fetch_min_bytes,
        "max_poll_interval_ms": 300_000,
        "session_timeout_ms": 10_000,
        "heartbeat_interval_ms": 3_000,
    }
