"""`workers.status` (compacted, key = node id): each worker's load, read by the router."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from schemas.base import Message, TimestampMs


class WorkerStatus(Message):
    """A worker's recent load; the latest record per node id is its current status."""

    node_id: str
    partitions: list[int]  # `batches` partitions assigned to this worker now
    load_ratio: Annotated[float, Field(ge=0.0)]  # busy time / wall time over the last interval
    avg_service_ms: Annotated[float, Field(ge=0.0)]  # mean time to answer one polled set of batches
    queue_len: Annotated[int, Field(ge=0)]  # batches waiting in its partitions (consumer lag)
    ts: TimestampMs
