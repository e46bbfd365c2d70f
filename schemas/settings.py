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

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Runtime configuration shared by streams, workers, infra and the CLI."""

    model_config = SettingsConfigDict(env_prefix="AUTOGLM_", extra="ignore")

    # --- services -------------------------------------------------------------
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "AUTOGLM_KAFKA_BOOTSTRAP_SERVERS"),
    )
    database_url: str | None = Field(
        None, validation_alias=AliasChoices("DATABASE_URL", "AUTOGLM_DATABASE_URL")
    )
    state_dir: Path = REPO_ROOT / ".state"
    postgres_port: int = 5433
    postgres_db: str = "autoglm"
    kafka_security_protocol: str = "PLAINTEXT"

    # --- topics ---------------------------------------------------------------
    topic_prefix: str = ""
    partitions: int = 6
    replication_factor: int = 1
    retention_ms: int = 7 * 24 * 3600 * 1000

    # --- ingest and batching ------------------------------------------------------
    max_payload_bytes: int = 64 * 1024
    batch_window_ms: int = 50
    batch_max_size: int = 100
    batch_max_bytes: int = 10 * 1024
    max_buffered_questions: int = 20_000
    dedup_capacity: int = 200_000
    stream_app_id: str = "autoglm-streams"
    safety_rules_file: Path | None = None  # JSON of schemas.safety.SafetyRules; built-in defaults otherwise
    quota_rate_per_s: float = 2000.0  # per service and stream process; 0 disables quotas
    quota_burst: float = 4000.0
    quota_overrides: dict[str, tuple[float, float]] = {}  # service -> (rate, burst), JSON in the env
    health_port: int = 0  # 0: no health endpoint; N: streams on N, worker k on N + k

    # --- workers --------------------------------------------------------------
    worker_group_id: str = "autoglm-workers"
    worker_transactions: bool = True
    worker_instance: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    transaction_timeout_ms: int = 10_000
    worker_max_batches: int = 16  # batches polled together share one reasoner call
    reasoner: str = "baseline"
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
        """The PostgreSQL connection string, embedded server's when none is given."""
        if self.database_url:
            return self.database_url
        return f"postgresql://autoglm@127.0.0.1:{self.postgres_port}/{self.postgres_db}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings are read once per process; tests build their own `Settings(...)`."""
    return Settings()
