"""The one isolation helper: settings that give a run (a test, a chaos scenario, a fuzz run,
a benchmarked system) its own topics, stream app id and worker group, so it sees nothing of
any other run on the same broker and leaves the real deployment's groups alone."""

from __future__ import annotations

import uuid

from schemas.settings import Settings


def isolate(base: Settings, label: str, **updates: object) -> Settings:
    """`base` with a private topic prefix (`label` plus a random suffix), stream app id and
    worker group; `updates` change any other setting (e.g. `partitions`)."""
    tag = f"{label}-{uuid.uuid4().hex[:8]}".replace("_", "-")
    return base.model_copy(
        update={
            "topic_prefix": f"{tag}-",
            "stream_app_id": f"{tag}-streams",
            "worker_group_id": f"{tag}-workers",
            **updates,
        }
    )
