"""Kafka connection options in Faust's form: Faust builds its own clients, so the
bootstrap list, the security options and the producer's acks and compression of
`runtime.kafka_config` are translated here, once, for the stream processor and for the
benchmark's Faust baseline."""

from __future__ import annotations

from typing import Any

import faust

from runtime.kafka_config import compression_type, security_config
from schemas.settings import Settings


def broker_url(settings: Settings) -> str:
    """Faust wants `kafka://host:port;host:port` for a list of bootstrap servers."""
    hosts = [h.strip() for h in settings.kafka_bootstrap_servers.split(",") if h.strip()]
    return ";".join(f"kafka://{h}" for h in hosts)


def broker_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    """The security options of runtime.kafka_config in Faust's form (Faust builds its own clients)."""
    config = security_config(settings)
    protocol = config["security_protocol"]
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(config["ssl_context"])
    return faust.SASLCredentials(
        username=config["sasl_plain_username"],
        password=config["sasl_plain_password"],
        ssl_context=config.get("ssl_context"),  # None: SASL_PLAINTEXT
        mechanism=config["sasl_mechanism"],
    )


def producer_options(settings: Settings) -> dict[str, Any]:
    """faust.App keyword arguments for the producer Faust builds itself: acks=all and the
    codec of `runtime.kafka_config.producer_config`."""
    return {"producer_acks": -1, "producer_compression_type": compression_type(settings)}


def app_options(settings: Settings) -> dict[str, Any]:
    """The faust.App keyword arguments every Faust app of ours shares (the stream processor
    and the benchmark's Faust baseline, which must differ from it only in its batching):
    brokers and credentials, in-memory state, no web server, topics created by
    `autoglm up` rather than by Faust, the producer's acks and codec."""
    return {
        "broker": broker_url(settings),
        "broker_credentials": broker_credentials(settings),
        "store": "memory://",
        "datadir": str(settings.state_dir / "faust"),
        "web_enabled": False,
        "topic_partitions": settings.partitions,
        "topic_allow_declare": False,
        "topic_disable_leader": True,
        "consumer_auto_offset_reset": "earliest",
        **producer_options(settings),
    }
