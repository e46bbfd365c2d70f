"""The one settings object: every default and every limit lives here.

Read from the environment: `KAFKA_BOOTSTRAP_SERVERS` and `DATABASE_URL` by their
conventional names, everything else as `AUTOGLM_<FIELD>` (e.g. `AUTOGLM_BATCH_WINDOW_MS`).
Nothing else in the code base carries a default for these values.
"""

from __future__ import annotations

import os
import socket
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
OWNER_ROLE = "autoglm"  # owns the database and its tables; migrations run as it
APP_ROLE = "autoglm_app"  # created by schemas/migrations/0002_app_role.sql: rows only, no DDL


class Settings(BaseSettings):
    """Runtime configuration shared by streams, workers, infra and the CLI."""

    model_config = SettingsConfigDict(env_prefix="AUTOGLM_", extra="ignore")

    # --- services -------------------------------------------------------------
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "AUTOGLM_KAFKA_BOOTSTRAP_SERVERS"),
    )
    # The application's connection (least-privilege role autoglm_app on the embedded server).
    database_url: SecretStr | None = Field(None, validation_alias=AliasChoices("DATABASE_URL", "AUTOGLM_DATABASE_URL"))
    # The owner role that runs migrations; DATABASE_URL when only that is given.
    database_admin_url: SecretStr | None = None
    state_dir: Path = REPO_ROOT / ".state"
    postgres_port: int = 5433
    postgres_db: str = "autoglm"

    # --- Kafka security (secrets only from the environment or files) -----------------
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_sasl_password_file: Path | None = None  # read when kafka_sasl_password is unset
    kafka_ssl_cafile: Path | None = None  # None: the system's trusted CAs
    kafka_ssl_certfile: Path | None = None  # client certificate, for brokers that ask for one
    kafka_ssl_keyfile: Path | None = None
    # How long the broker may hold a fetch that finds no data. aiokafka keeps one fetch in
    # flight per broker, and a fetch that names only idle partitions (while the busy ones'
    # records are still being consumed) holds back the busy partitions' next records for
    # this long: Faust's fixed 1,500 ms showed as 1.6-s ingest stalls under load.
    kafka_fetch_max_wait_ms: int = 50
    # Requests, not records, are what cost on a small machine: each produce or fetch wakes
    # the broker and the other side (~50 us of a core each on this 2-core VM). A producer
    # waits up to `kafka_linger_ms` to put more records in one request; a consumer's fetch
    # waits (up to kafka_fetch_max_wait_ms) for `kafka_fetch_min_bytes` before it returns.
    kafka_linger_ms: int = 2
    kafka_fetch_min_bytes: int = 1
    # Codec of every record batch our producers write (questions from our clients, batches,
    # answers, status, DLQ); consumers read any codec whatever this says. zstd: 56 % fewer
    # bytes per question on disk than none, 46 % for lz4, for ~60 us of a core per question
    # (`autoglm bench --experiments compression`, docs/serving.md#compression).
    kafka_compression: Literal["none", "gzip", "lz4", "zstd"] = "zstd"

    # --- topics ---------------------------------------------------------------
    topic_prefix: str = ""
    partitions: int = 6
    replication_factor: int = 1
    retention_ms: int = 7 * 24 * 3600 * 1000

    # --- ingest and batching ------------------------------------------------------
    max_payload_bytes: int = 64 * 1024
    batch_window_ms: int = 10  # measured: clusters of (service, user) rarely fill, so a longer window only waits
    batch_max_size: int = 100
    batch_max_bytes: int = 10 * 1024
    batch_min_expected: float = 0.5  # a cluster's buffer waits its window only if its recent rate predicts this many more questions in it; 0: always wait (streams.arrivals)
    batch_arrival_keys: int = 100_000  # clusters whose arrival rate is remembered (LRU)
    max_buffered_questions: int = 20_000
    produce_retry_s: float = 300.0  # the stream processor re-sends this long while the broker is away
    dedup_capacity: int = 200_000
    stream_app_id: str = "autoglm-streams"
    load_aware_routing: bool = (
        True  # bounded-load consistent hashing of batches to workers' home partitions, fed by worker status
    )
    routing_epsilon: float = 0.25
    adaptive_batching: bool = False  # online controller tunes window and size per service
    latency_target_p99_ms: float = 150.0  # the controller's p99 target
    safety_rules_file: Path | None = None  # JSON of schemas.safety.SafetyRules; built-in defaults otherwise
    quota_rate_per_s: float = 2000.0  # per service and stream process; 0 disables quotas
    quota_burst: float = 4000.0
    quota_overrides: dict[str, tuple[float, float]] = {}  # service -> (rate, burst), JSON in the env
    health_port: int = 0  # 0: no health endpoint; N: streams on N, worker k on N + k
    gil_switch_ms: float = 0.5  # sys.setswitchinterval in stream and worker processes (Python's default: 5 ms)

    # --- workers --------------------------------------------------------------
    worker_group_id: str = "autoglm-workers"
    shutdown_timeout_s: float = 30.0
    worker_transactions: bool = True
    worker_instance: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    transaction_timeout_ms: int = 10_000
    transaction_gap_ms: float = 3.0  # a producer's next transaction waits this long after a commit (workers.delivery)
    worker_max_batches: int = 128  # records (batches) per poll; polled batches share one reasoner call
    worker_linger_ms: float = 50.0  # a busy worker waits up to this after a poll for more questions before calling the reasoner (workers.linger); 0: never
    worker_linger_questions: int = 16  # ... or until this many questions are in hand
    worker_linger_min_qps: float = (
        40.0  # ... and only while it received at least this many questions in the last second
    )
    worker_linger_adaptive: bool = True  # a bandit picks the linger window per load level from answer latencies (workers.linger_control), starting from worker_linger_ms; replaces the min-qps gate
    worker_max_waiting_polls: int = 4  # reasoned polls waiting for delivery before polling stops (workers.outbox)
    status_interval_s: float = 1.0  # how often a worker publishes its load to workers.status
    max_batch_cost: float = 400_000.0  # estimated subgraph nodes + edges per reasoner call, above which it is split into chunks (workers.splitting); 0: never split
    reasoner: str = "gnn"  # or "baseline": template kNN paths, kept as the comparison
    reasoner_process: bool = True  # worker: the reasoner runs in a child process (workers/reasoner_process.py: no GIL shared with the event loop)
    gnn_checkpoint: Path | None = None  # default: the committed reasoning/checkpoints/gnn.pt
    encode_cache_size: int = 50_000  # entity-masked question -> vector, bounded LRU (~1.5 KB each: about 75 MB at most)
    subgraph_cache_size: int = (
        0  # (topic entity, hop relations) -> subgraph LRU entries; 0: off (measured: pays only above ~70% repeats)
    )
    device: str = "auto"
    torch_threads: int = 0
    db_retry_max_s: float = 30.0
    kb_path: Path | None = None
    max_subgraph_nodes: int = 2000
    max_answers: int = 100

    # --- feedback and replay ------------------------------------------------------
    finetune_score_threshold: float = 0.5

    @property
    def kafka_is_external(self) -> bool:
        """True when the user pointed us at an existing cluster: then nothing is started."""
        return bool(os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))

    @property
    def postgres_is_external(self) -> bool:
        """True when DATABASE_URL names an existing server: then nothing is started."""
        return bool(os.environ.get("DATABASE_URL"))

    @property
    def dsn(self) -> str:
        """The application's PostgreSQL connection string (no DDL rights on the embedded server)."""
        if self.database_url:
            return _reveal(self.database_url)
        return f"postgresql://{APP_ROLE}@127.0.0.1:{self.postgres_port}/{self.postgres_db}"

    @property
    def admin_dsn(self) -> str:
        """The owner's connection string, for migrations only."""
        if self.database_admin_url:
            return _reveal(self.database_admin_url)
        if self.postgres_is_external and self.database_url:
            return _reveal(self.database_url)
        return f"postgresql://{OWNER_ROLE}@127.0.0.1:{self.postgres_port}/{self.postgres_db}"

    def kafka_sasl_secret(self) -> str:
        """The SASL password: AUTOGLM_KAFKA_SASL_PASSWORD, else the first line of the password file."""
        if self.kafka_sasl_password is not None:
            return _reveal(self.kafka_sasl_password)
        if self.kafka_sasl_password_file is not None:
            lines = self.kafka_sasl_password_file.read_text().splitlines()
            return lines[0] if lines else ""
        raise ValueError(
            f"kafka_security_protocol={self.kafka_security_protocol} needs a password: set "
            "AUTOGLM_KAFKA_SASL_PASSWORD or AUTOGLM_KAFKA_SASL_PASSWORD_FILE."
        )


def _reveal(value: SecretStr | str) -> str:
    """The plain value of a secret (model_copy(update=...) may have stored a plain str)."""
    return value.get_secret_value() if isinstance(value, SecretStr) else value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings are read once per process; tests build their own `Settings(...)`."""
    return Settings()
