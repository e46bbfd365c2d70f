"""Does compressing record batches pay? (`kafka_compression`, docs/serving.md#compression)

One fixed load (half of (c)'s maximum), the same seeded arrivals and questions, one isolated
copy of (c) per codec (`CODECS`): every producer of the run uses the codec, the load
driver's too (it stands for our client, `autoglm ask`), so `questions`, `batches` and
`answers` are all written with it. Per codec:

* bytes per question on disk for each of the three topics: the growth of the topic's log
  segments on the local broker over the measured step (harness.bench.disk), divided by the
  questions sent in it; record batch headers and transaction markers included, as stored;
* CPU microseconds per answered question of each process (the stream processor, the worker
  with its reasoner child, the load driver standing for the client, the broker, PostgreSQL):
  its CPU share over the step's measured window divided by the answers per second in it;
* p50/p99 and the codecs actually found in the stored batches (aiokafka's C record
  builder compresses every batch, even one the codec makes larger: a lone small question).

End-to-end CPU per question on this shared 2-core machine moves by more between runs than a
codec costs, so the codecs' own cost is also measured apart (`codec_cost`): the `none` run's
stored batches, exactly what the producers would have compressed, compressed and decompressed
again with aiokafka's own codec functions, best of a few passes.
"""

from __future__ import annotations

import time

from aiokafka import codec as kafka_codec

from harness.bench.disk import StoredBatch, batch_codecs, stored_batches, topic_bytes
from harness.bench.experiments.pipeline import Context, Running, isolated_pipeline
from harness.bench.experiments.reference import reference_rate
from schemas.settings import Settings
from schemas.topics import ANSWERS, BATCHES, QUESTIONS, topic_name

CODECS = ("none", "lz4", "zstd")
TOPICS = (QUESTIONS, BATCHES, ANSWERS)
LOAD = 0.5  # share of (c)'s maximum: every run holds the SLO, so CPU per question is not a backlog's
SEED = 47
PASSES = 3  # codec_cost: best of this many passes over the stored batches
CODEC_FUNCTIONS = {
    "gzip": (kafka_codec.gzip_encode, kafka_codec.gzip_decode),
    "lz4": (kafka_codec.lz4_encode, kafka_codec.lz4_decode),
    "zstd": (kafka_codec.zstd_encode, kafka_codec.zstd_decode),
}


async def run(ctx: Context) -> dict:
    seconds = 3 * ctx.step_s
    out: dict = {"seconds": seconds, "load_share": LOAD, "runs": []}
    rate = 0.0
    for codec in CODECS:
        async with isolated_pipeline(ctx, f"compression-{codec}", {"kafka_compression": codec}, ctx.workload()) as pipe:
            if not rate:
                rate, source = await reference_rate(ctx, pipe)
                rate *= LOAD
                out.update(offered_qps=round(rate, 1), reference_source=source)
            await pipe.warm_up(0.3 * rate)
            measured = await _measure(pipe, rate, seconds, ctx.slo_ms)
            out["runs"].append({"codec": codec, "startup_s": pipe.startup_s, **measured})
            if codec == "none":
                out["codec_cost"] = codec_cost(pipe.system.settings)
    out["vs_none"] = versus_none(out["runs"])
    return out


async def _measure(pipe: Running, rate: float, seconds: float, slo_ms: float) -> dict:
    settings = pipe.system.settings
    before = {t: topic_bytes(settings, topic_name(settings, t)) for t in TOPICS}
    seen = await pipe.measure(rate, seconds, slo_ms, SEED, "compression")
    after = {t: topic_bytes(settings, topic_name(settings, t)) for t in TOPICS}
    step = seen.step
    return {
        **seen.latency(),
        "sent": step["sent"],
        "answered": step["answered"],
        "bytes_per_question": bytes_per_question(before, after, step["sent"]),
        "cpu_us_per_question": cpu_us_per_question(step["cpu_pct"], step["throughput_qps"]),
        "cpu_pct": step["cpu_pct"],
        "loadavg": step["loadavg"],
        "stored_batches": {t: dict(batch_codecs(settings, topic_name(settings, t))) for t in TOPICS},
    }


def bytes_per_question(before: dict[str, int | None], after: dict[str, int | None], sent: int) -> dict | None:
    """Growth of each topic's segments over the step per question sent, and their sum;
    None when the broker is not ours (no segments to read)."""
    if not sent or any(v is None for v in (*before.values(), *after.values())):
        return None
    out = {t: round((after[t] - before[t]) / sent, 1) for t in before}  # type: ignore[operator]
    out["total"] = round(sum(out.values()), 1)
    return out


def cpu_us_per_question(cpu_pct: dict[str, float], answered_qps: float) -> dict:
    """Each process's CPU (% of a core over the measured window) as microseconds per
    answered question, and their sum; the system's processes lose their `pipeline:` prefix."""
    if not answered_qps:
        return {}
    out = {name.split(":", 1)[-1]: round(1e4 * pct / answered_qps, 1) for name, pct in cpu_pct.items()}
    out["total"] = round(sum(out.values()), 1)
    return out


def codec_cost(settings: Settings) -> dict:
    """Per codec and topic: microseconds per question to compress and to decompress the
    `none` run's stored batches (aiokafka's codec functions, best of PASSES) and the size of
    their records after compression as a share of before (every batch compressed, as
    aiokafka's C record builder does, even when that makes it larger)."""
    batches = {t: [b for b in stored_batches(settings, topic_name(settings, t)) if b.codec == "none"] for t in TOPICS}
    questions = sum(b.records for b in batches[QUESTIONS])
    out: dict = {"questions": questions, "codecs": {}}
    if not questions:
        return out
    for name, (encode, decode) in CODEC_FUNCTIONS.items():
        out["codecs"][name] = {t: _cost(batches[t], encode, decode, questions) for t in TOPICS}
    return out


def _cost(batches: list[StoredBatch], encode, decode, questions: int) -> dict:  # noqa: ANN001
    payloads = [b.payload for b in batches]
    raw = sum(map(len, payloads))
    best_in, best_out, packed = float("inf"), float("inf"), []
    for _ in range(PASSES):
        t0 = time.perf_counter()
        packed = [encode(p) for p in payloads]
        t1 = time.perf_counter()
        for p in packed:
            decode(p)
        best_in, best_out = min(best_in, t1 - t0), min(best_out, time.perf_counter() - t1)
    return {
        "batches": len(payloads),
        "records_bytes": raw,
        "size_after": round(sum(map(len, packed)) / raw, 3) if raw else None,
        "compress_us_per_question": round(1e6 * best_in / questions, 2),
        "decompress_us_per_question": round(1e6 * best_out / questions, 2),
    }


def versus_none(runs: list[dict]) -> dict:
    """Each codec's bytes and CPU per question against the `none` run's (ratio, difference)."""
    base = next((r for r in runs if r["codec"] == "none"), None)
    if base is None:
        return {}
    out = {}
    for r in runs:
        if r is base:
            continue
        b, c = r.get("bytes_per_question"), r.get("cpu_us_per_question") or {}
        nb, nc = base.get("bytes_per_question"), base.get("cpu_us_per_question") or {}
        out[r["codec"]] = {
            "bytes_ratio": {t: round(b[t] / nb[t], 3) if nb[t] else None for t in nb} if b and nb else None,
            "cpu_us_diff": {k: round(c[k] - nc[k], 1) for k in c if k in nc},
        }
    return out
