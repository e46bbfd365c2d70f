"""What a topic holds on the local broker's disk: the bytes of its log segments and the
codec of each stored record batch, read from the partition folders (`<topic>-<partition>`)
under the broker's data dir (infra/kafka/start.sh: `<state dir>/kafka/data`).

Why the files and not the Kafka protocol: aiokafka has no DescribeLogDirs, and the segment
files are what "on disk" means; a segment's size grows with every append (page cache), so
it can be read while the broker runs. Only `*.log` files count: the offset and time indexes
are preallocated sparse files. A broker we did not start (KAFKA_BOOTSTRAP_SERVERS) has no
folder here: `log_dir` says None and callers report nothing.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from runtime.services.kafka import kafka_state_dir
from schemas.settings import Settings

# Record batch v2 header (61 bytes): baseOffset int64, batchLength int32, partitionLeaderEpoch
# int32, magic int8, crc uint32, attributes int16 (bits 0-2 codec, bit 5 control batch),
# lastOffsetDelta int32, base/max timestamp int64, producerId int64, producerEpoch int16,
# baseSequence int32, records count int32; the records follow (compressed as one block).
_HEADER = struct.Struct(">qiibIhiqqqhii")
CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
_CONTROL = 0x20


@dataclass(frozen=True)
class StoredBatch:
    codec: str  # CODECS' name, "control" for a transaction marker, "magic vN" for an old format
    records: int
    payload: bytes  # the records as stored (compressed when codec is a codec)


def log_dir(settings: Settings) -> Path | None:
    """The local broker's data folder, or None when the broker is not ours."""
    if settings.kafka_is_external:
        return None
    folder = kafka_state_dir(settings) / "data"
    return folder if folder.is_dir() else None


def partition_dirs(settings: Settings, topic: str) -> list[Path]:
    """`<topic>-<n>` folders of `topic` (not of a topic whose name only starts like it)."""
    folder = log_dir(settings)
    if folder is None:
        return []
    return [p for p in folder.glob(f"{topic}-*") if p.is_dir() and p.name[len(topic) + 1 :].isdigit()]


def topic_bytes(settings: Settings, topic: str) -> int | None:
    """Bytes of every log segment of `topic` on the local broker's disk; None when not ours."""
    if log_dir(settings) is None:
        return None
    return sum(f.stat().st_size for d in partition_dirs(settings, topic) for f in d.glob("*.log"))


def stored_batches(settings: Settings, topic: str) -> Iterator[StoredBatch]:
    """Every record batch of `topic` in its log segments, in segment order."""
    for segment in (f for d in partition_dirs(settings, topic) for f in sorted(d.glob("*.log"))):
        data = segment.read_bytes()
        pos = 0
        while pos + _HEADER.size <= len(data):
            header = _HEADER.unpack_from(data, pos)
            length, magic, attributes, records = header[1], header[3], header[5], header[12]
            if length <= 0:
                break  # the end of what was written so far
            if magic != 2:
                codec = f"magic v{magic}"
            elif attributes & _CONTROL:
                codec = "control"
            else:
                codec = CODECS.get(attributes & 0x07, f"codec {attributes & 0x07}")
            yield StoredBatch(codec, records, data[pos + _HEADER.size : pos + 12 + length])
            pos += 12 + length  # baseOffset and batchLength precede the bytes batchLength counts


def batch_codecs(settings: Settings, topic: str) -> Counter[str]:
    """How many stored record batches of `topic` carry each codec; the transaction markers
    (control batches, never compressed) count as `control`."""
    return Counter(b.codec for b in stored_batches(settings, topic))
