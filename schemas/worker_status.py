"""`workers.status` (compacted, key = node id): each worker's load, read by the router."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from schemas.base import Message, TimestampMs


class CacheStats(Message):
    """One bounded cache of the worker's reasoner (cumulative since the worker started)."""

    hits: Annotated[int, Field(ge=0)]
    misses: Annotated[int, Field(ge=0)]
    size: Annotated[int, Field(ge=0)]  # entries held now
    capacity: Annotated[int, Field(ge=0)]  # most entries it may hold (0: cache off)


class WorkerStatus(Message):
    """A worker's recent load; the latest record per node id is its current status."""

    node_id: str
    partitions: list[int]  # `batches` partitions assigned to this worker now
    load_ratio: Annotated[float, Field(ge=0.0)]  # busy time / wall time over the last interval
    avg_service_ms: Annotated[float, Field(ge=0.0)]  # mean time to answer one polled set of batches
    queue_len: Annotated[int, Field(ge=0)]  # batches waiting in its partitions (consumer lag)
    caches: dict[str, CacheStats] = Field(default_factory=dict)  # e.g. "encode", "subgraph"
    ts: TimestampMs
