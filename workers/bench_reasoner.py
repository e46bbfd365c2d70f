"""`make bench-reasoner`: how fast the reasoner alone answers mixed-hop batches of 100.

No Kafka, no database: `answer_batch` on batches drawn from `qa_val` (1-, 2- and 3-hop
shuffled together, raw text by default, as users type), the way the worker calls it.

Two passes over different questions:
- cold: the encoding cache emptied (every new question shape is encoded by MiniLM, the
  slow part);
- warm: the cache as a worker has it after start-up (pre-filled with the training
  templates' vectors from the checkpoint) plus what the cold pass saw.

Printed per pass: questions/second, ms per batch by stage (link, encode, relations,
subgraph, gnn, decode), cache hit rate, Hits@1; then load time and peak memory.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
import uuid
from typing import Any, Sequence

from schemas.question import Question
from schemas.settings import Settings
from workers.evaluate import score
from workers.metaqa import HOPS, QAPair, qa_file, read_qa


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="autoglm bench-reasoner", description=__doc__.split("\n\n")[0])
    p.add_argument("--reasoner", choices=["gnn", "baseline"], default="gnn")
    p.add_argument("--batches", type=int, default=10, help="batches per pass (default 10)")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--bracketed", action="store_true", help="keep MetaQA's [entity] marks (default: raw text)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: AUTOGLM_TORCH_THREADS)")
    p.add_argument("--device", default=None, help="cpu, cuda, auto (default: AUTOGLM_DEVICE)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    overrides: dict[str, Any] = {"reasoner": args.reasoner}
    if args.threads is not None:
        overrides["torch_threads"] = args.threads
    if args.device is not None:
        overrides["device"] = args.device
    settings = Settings(**overrides)
    need = 2 * args.batches * args.batch_size
    pairs = sample(need, args.seed)
    if len(pairs) < need:
        print(f"only {len(pairs)} qa_val questions: use fewer --batches", file=sys.stderr)
        return 2
    half = len(pairs) // 2

    rss_before = peak_rss_mb()
    started = time.perf_counter()
    from workers.reasoner import load_reasoner

    reasoner = load_reasoner(settings)
    load_s = time.perf_counter() - started
    rss_loaded = peak_rss_mb()
    report: dict[str, Any] = {
        "reasoner": f"{reasoner.name}/{reasoner.version}",
        "device": str(getattr(getattr(reasoner, "device", None), "type", "cpu")),
        "threads": _threads(),
        "batch_size": args.batch_size,
        "batches_per_pass": args.batches,
        "text": "bracketed" if args.bracketed else "raw",
        "load_s": round(load_s, 2),
        "passes": passes(reasoner, pairs[:half], pairs[half:], args.batch_size, not args.bracketed),
        "rss_mb_before_load": round(rss_before, 1),
        "peak_rss_mb_after_load": round(rss_loaded, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    cuda = _cuda_peak_mb()
    if cuda is not None:
        report["cuda_peak_mb"] = round(cuda, 1)
    print(json.dumps(report, indent=2) if args.json else table(report))
    return 0


def sample(n: int, seed: int) -> list[QAPair]:
    """`n` qa_val questions, 1-, 2- and 3-hop shuffled together (fixed seed)."""
    pairs = [p for hop in HOPS for p in read_qa(qa_file(hop, "val"))]
    random.Random(seed).shuffle(pairs)
    return pairs[:n]


def passes(
    reasoner: Any, first: Sequence[QAPair], second: Sequence[QAPair], batch_size: int, raw: bool
) -> dict[str, Any]:
    """Cold: encoding cache emptied. Warm: pre-filled as at start-up, plus what cold saw."""
    cache = getattr(reasoner, "encoder", None)
    if hasattr(cache, "clear"):
        cache.clear()
    cold = run_pass(reasoner, first, batch_size, raw)
    if hasattr(reasoner, "prewarm"):
        reasoner.prewarm()
    return {"cold": cold, "warm": run_pass(reasoner, second, batch_size, raw)}


def run_pass(reasoner: Any, pairs: Sequence[QAPair], batch_size: int, raw: bool) -> dict[str, Any]:
    """Answer `pairs` in batches; seconds per stage are read off the reasoner's `timings`."""
    timings = getattr(reasoner, "timings", {})
    before = dict(timings)
    cache = getattr(reasoner, "encoder", None)
    hits0, misses0 = getattr(cache, "hits", 0), getattr(cache, "misses", 0)
    now = int(time.time() * 1000)
    batches = [pairs[i : i + batch_size] for i in range(0, len(pairs), batch_size)]
    hits_at_1 = 0.0
    wall = 0.0
    for batch in batches:
        questions = [
            Question(
                question_id=uuid.uuid4(),
                service="bench",
                user_id="bench",
                text=p.raw_text if raw else p.question,
                ts=now,
            )
            for p in batch
        ]
        started = time.perf_counter()
        results = reasoner.answer_batch(questions)
        wall += time.perf_counter() - started
        hits_at_1 += sum(score(p, r)["hits_at_1"] for p, r in zip(batch, results))
    stages = {k: 1000 * (v - before.get(k, 0.0)) / len(batches) for k, v in timings.items() if k != "total"}
    looked_up = getattr(cache, "hits", 0) - hits0 + getattr(cache, "misses", 0) - misses0
    return {
        "questions": len(pairs),
        "questions_per_s": round(len(pairs) / wall, 1),
        "ms_per_batch": round(1000 * wall / len(batches), 2),
        "stage_ms_per_batch": {k: round(v, 2) for k, v in stages.items()},
        "cache_hit_rate": round((getattr(cache, "hits", 0) - hits0) / looked_up, 3) if looked_up else None,
        "hits_at_1": round(hits_at_1 / len(pairs), 4),
    }


def table(report: dict[str, Any]) -> str:
    passes = report["passes"]
    stages = list(next(iter(passes.values()))["stage_ms_per_batch"])
    head = (
        f"{'pass':<6}{'q/s':>9}{'ms/batch':>10}"
        + "".join(f"{s:>11}" for s in stages)
        + f"{'cache hits':>12}{'Hits@1':>8}"
    )
    lines = [
        f"reasoner {report['reasoner']} on {report['device']} ({report['threads']} torch threads): "
        f"{report['batches_per_pass']} mixed-hop batches of {report['batch_size']} per pass, {report['text']} text",
        "stage columns: ms per batch",
        head,
        "-" * len(head),
    ]
    for name, p in passes.items():
        hit = "-" if p["cache_hit_rate"] is None else f"{100 * p['cache_hit_rate']:.0f}%"
        cells = "".join(f"{p['stage_ms_per_batch'][s]:>11.2f}" for s in stages)
        lines.append(
            f"{name:<6}{p['questions_per_s']:>9.0f}{p['ms_per_batch']:>10.2f}{cells}{hit:>12}{p['hits_at_1']:>8.3f}"
        )
    lines.append(
        f"load {report['load_s']} s; peak RSS {report['peak_rss_mb']} MB "
        f"({report['rss_mb_before_load']} MB before loading, {report['peak_rss_mb_after_load']} MB after)"
        + (f"; CUDA peak {report['cuda_peak_mb']} MB" if "cuda_peak_mb" in report else "")
    )
    return "\n".join(lines)


def peak_rss_mb() -> float:
    """The process's peak resident memory so far (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _cuda_peak_mb() -> float | None:
    import torch

    if not torch.cuda.is_available() or torch.cuda.max_memory_allocated() == 0:
        return None
    return torch.cuda.max_memory_allocated() / 2**20


if __name__ == "__main__":
    raise SystemExit(main())
