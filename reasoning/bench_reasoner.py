"""`make bench-reasoner`: how fast the reasoner alone answers mixed-hop batches of 100.

No Kafka, no database: `answer_batch` on batches drawn from `qa_val` (1-, 2- and 3-hop
shuffled together, raw text by default, as users type), the way the worker calls it. The
questions are MetaQA NTM's by default (`--questions ntm`: paraphrased, so a phrasing rarely
repeats, as with people); `--questions vanilla` asks MetaQA's templates.

Three passes:
- cold: the encoding and subgraph caches emptied (every new question shape is encoded by
  MiniLM, the slow part);
- warm: other questions, the encoding cache as a worker has it after start-up (pre-filled
  with the training templates' vectors from the checkpoint) plus what the cold pass saw;
- repeat: the warm pass's questions asked again in another order (popular questions,
  redelivered batches): the only pass where the subgraph cache can hit, since no two
  qa_val questions share a topic entity and relation choices.

Printed per pass: questions/second, ms per batch by stage (link, encode, relations,
subgraph, gnn, decode), encoding and subgraph cache hit rates, Hits@1; then load time and
peak memory. `--subgraph-cache N` / `--no-subgraph-cache` override the subgraph cache's
capacity; `--encode-cache N` the encoding cache's, and `--cold` (= `--encode-cache 0`) turns
it off so every pass encodes every question (free text: no phrasing is ever seen twice);
`--checkpoint FILE` measures another GNN checkpoint, `--precision bf16|int8|fp32` overrides
how its fine-tuned encoder layers run on a CPU; `--estimate` calls `estimate_costs` before each
`answer_batch`, as the worker does when `max_batch_cost` > 0 (its time is in the stages and
in q/s).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reasoning.evaluate import score
from reasoning.metaqa import HOPS, QAPair, Variant, qa_file, read_qa
from schemas.question import Question
from schemas.settings import Settings


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="autoglm bench-reasoner", description=__doc__.split("\n\n")[0])
    p.add_argument("--reasoner", choices=["gnn", "baseline"], default="gnn")
    p.add_argument("--batches", type=int, default=10, help="batches per pass (default 10)")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--bracketed", action="store_true", help="keep MetaQA's [entity] marks (default: raw text)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: AUTOGLM_TORCH_THREADS)")
    p.add_argument("--device", default=None, help="cpu, cuda, auto (default: AUTOGLM_DEVICE)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--subgraph-cache", type=int, default=None, help="subgraph cache entries (default: settings)")
    p.add_argument("--no-subgraph-cache", dest="subgraph_cache", action="store_const", const=0, help="capacity 0")
    p.add_argument("--questions", choices=["ntm", "vanilla"], default="ntm", help="qa_val variant (default ntm)")
    p.add_argument("--encode-cache", type=int, default=None, help="encoding cache entries (default: settings)")
    p.add_argument("--cold", dest="encode_cache", action="store_const", const=0, help="no encoding cache at all")
    p.add_argument("--checkpoint", type=Path, default=None, help="GNN checkpoint (default: the committed one)")
    p.add_argument("--precision", choices=["fp32", "bf16", "int8"], default=None, help="tuned encoder layers on a CPU")
    p.add_argument("--estimate", action="store_true", help="estimate_costs before each batch, as the worker does")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    overrides: dict[str, Any] = {"reasoner": args.reasoner}
    if args.threads is not None:
        overrides["torch_threads"] = args.threads
    if args.device is not None:
        overrides["device"] = args.device
    if args.encode_cache is not None:
        overrides["encode_cache_size"] = args.encode_cache
    scratch = tempfile.TemporaryDirectory(prefix="bench-reasoner-")
    checkpoint = args.checkpoint
    if args.precision is not None:
        checkpoint = with_precision(checkpoint, args.precision, Path(scratch.name))
    if checkpoint is not None:
        overrides["gnn_checkpoint"] = checkpoint
    settings = Settings(**overrides)
    need = 2 * args.batches * args.batch_size
    pairs = sample(need, args.seed, args.questions)
    if len(pairs) < need:
        print(f"only {len(pairs)} qa_val questions: use fewer --batches", file=sys.stderr)
        return 2
    half = len(pairs) // 2

    rss_before = peak_rss_mb()
    started = time.perf_counter()
    from reasoning.loading import load_reasoner

    reasoner = load_reasoner(settings)
    getattr(reasoner, "wait_loaded", lambda: None)()  # the encoder loads in the background: part of loading
    load_s = time.perf_counter() - started
    if args.subgraph_cache is not None and hasattr(reasoner, "subgraph_cache"):
        from reasoning.gnn.subgraph_cache import SubgraphCache

        reasoner.subgraph_cache = SubgraphCache(args.subgraph_cache)
    rss_loaded = peak_rss_mb()
    report: dict[str, Any] = {
        "reasoner": f"{reasoner.name}/{reasoner.version}",
        "device": str(getattr(getattr(reasoner, "device", None), "type", "cpu")),
        "threads": _threads(),
        "batch_size": args.batch_size,
        "batches_per_pass": args.batches,
        "text": "bracketed" if args.bracketed else "raw",
        "questions": args.questions,
        "encode_cache": getattr(getattr(reasoner, "encoder", None), "capacity", None),
        "encoder": _encoder_name(reasoner),
        "load_s": round(load_s, 2),
        "subgraph_cache": getattr(getattr(reasoner, "subgraph_cache", None), "capacity", None),
        "estimate": args.estimate,
        "passes": passes(reasoner, pairs[:half], pairs[half:], args.batch_size, not args.bracketed, args.estimate),
        "rss_mb_before_load": round(rss_before, 1),
        "peak_rss_mb_after_load": round(rss_loaded, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    cuda = _cuda_peak_mb()
    if cuda is not None:
        report["cuda_peak_mb"] = round(cuda, 1)
    print(json.dumps(report, indent=2) if args.json else table(report))
    scratch.cleanup()
    return 0


def sample(n: int, seed: int, variant: Variant = "vanilla") -> list[QAPair]:
    """`n` qa_val questions of `variant`, 1-, 2- and 3-hop shuffled together (fixed seed)."""
    pairs = [p for hop in HOPS for p in read_qa(qa_file(hop, "val", variant))]
    random.Random(seed).shuffle(pairs)
    return pairs[:n]


def with_precision(path: Path | None, precision: str, folder: Path) -> Path:
    """A copy of the checkpoint whose tuned encoder layers run in `precision` on a CPU."""
    from reasoning.gnn.checkpoint import DEFAULT_PATH, Checkpoint

    checkpoint = Checkpoint.load(path or DEFAULT_PATH)
    checkpoint.config.encoder_precision = precision
    out = folder / f"gnn-{precision}.pt"
    checkpoint.save(out)
    return out


def _encoder_name(reasoner: Any) -> str:
    """`K layers bf16` (int8, fp32) or `packaged` (frozen, all six layers)."""
    inner = getattr(getattr(reasoner, "encoder", None), "encoder", None)
    loaded = getattr(inner, "loaded", lambda: None)()
    tuned = getattr(inner, "_tuned", None)
    if tuned is None:
        return "packaged"
    return f"{tuned.layers} layers {getattr(loaded, 'precision', tuned.precision)}"


def passes(
    reasoner: Any, first: Sequence[QAPair], second: Sequence[QAPair], batch_size: int, raw: bool, estimate: bool
) -> dict[str, Any]:
    """Cold: caches emptied. Warm: pre-filled as at start-up, plus what cold saw. Repeat:
    warm's questions again, shuffled. One question is answered first, untimed: a worker pays
    the first call's one-time costs (lazy initialisation, ~0.3 s) once, at start-up."""
    run_pass(reasoner, first[:1], batch_size, raw, estimate)
    for cache in (getattr(reasoner, "encoder", None), getattr(reasoner, "subgraph_cache", None)):
        if hasattr(cache, "clear"):
            cache.clear()
    cold = run_pass(reasoner, first, batch_size, raw, estimate)
    if hasattr(reasoner, "prewarm"):
        reasoner.prewarm()
    warm = run_pass(reasoner, second, batch_size, raw, estimate)
    again = list(second)
    random.Random(1).shuffle(again)
    return {"cold": cold, "warm": warm, "repeat": run_pass(reasoner, again, batch_size, raw, estimate)}


def run_pass(reasoner: Any, pairs: Sequence[QAPair], batch_size: int, raw: bool, estimate: bool) -> dict[str, Any]:
    """Answer `pairs` in batches; seconds per stage are read off the reasoner's `timings`."""
    timings = getattr(reasoner, "timings", {})
    before = dict(timings)
    caches = {
        "cache_hit_rate": getattr(reasoner, "encoder", None),
        "subgraph_hit_rate": getattr(reasoner, "subgraph_cache", None),
    }
    counts0 = {name: (getattr(c, "hits", 0), getattr(c, "misses", 0)) for name, c in caches.items()}
    now = int(time.time() * 1000)
    batches = [pairs[i : i + batch_size] for i in range(0, len(pairs), batch_size)]
    hits_at_1 = 0.0
    wall = cpu = 0.0
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
        started, cpu_started = time.perf_counter(), time.process_time()
        if estimate and hasattr(reasoner, "estimate_costs"):
            reasoner.estimate_costs(questions)
        results = reasoner.answer_batch(questions)
        wall += time.perf_counter() - started
        cpu += time.process_time() - cpu_started  # every thread of the process: torch may use several
        hits_at_1 += sum(score(p, r)["hits_at_1"] for p, r in zip(batch, results))
    stages = {k: 1000 * (v - before.get(k, 0.0)) / len(batches) for k, v in timings.items() if k != "total"}
    return {
        "questions": len(pairs),
        "questions_per_s": round(len(pairs) / wall, 1),
        "ms_per_batch": round(1000 * wall / len(batches), 2),
        "cpu_us_per_question": round(1e6 * cpu / len(pairs), 1),
        "stage_ms_per_batch": {k: round(v, 2) for k, v in stages.items()},
        **{name: _hit_rate(cache, *counts0[name]) for name, cache in caches.items()},
        "hits_at_1": round(hits_at_1 / len(pairs), 4),
    }


def _hit_rate(cache: Any, hits0: int, misses0: int) -> float | None:
    """Share of lookups since (hits0, misses0) that hit; None when nothing was looked up."""
    hits, misses = getattr(cache, "hits", 0) - hits0, getattr(cache, "misses", 0) - misses0
    return round(hits / (hits + misses), 3) if hits + misses else None


_RATES = ("cache_hit_rate", "subgraph_hit_rate")


def table(report: dict[str, Any]) -> str:
    passes = report["passes"]
    stages = list(next(iter(passes.values()))["stage_ms_per_batch"])
    head = (
        f"{'pass':<6}{'q/s':>9}{'ms/batch':>10}{'cpu us/q':>10}"
        + "".join(f"{s:>11}" for s in stages)
        + f"{'enc hits':>10}{'sub hits':>10}{'Hits@1':>8}"
    )
    lines = [
        f"reasoner {report['reasoner']} on {report['device']} ({report['threads']} torch threads), "
        f"encoder {report['encoder']}: {report['batches_per_pass']} mixed-hop batches of {report['batch_size']} "
        f"{report['questions']} qa_val questions per pass, {report['text']} text, "
        f"encoding cache {report['encode_cache']}, subgraph cache {report['subgraph_cache']}"
        + (", estimate_costs first" if report["estimate"] else ""),
        "stage columns: ms per batch",
        head,
        "-" * len(head),
    ]
    for name, p in passes.items():
        hits = "".join("-".rjust(10) if p[k] is None else f"{100 * p[k]:.0f}%".rjust(10) for k in _RATES)
        cells = "".join(f"{p['stage_ms_per_batch'].get(s, 0.0):>11.2f}" for s in stages)
        rate = f"{name:<6}{p['questions_per_s']:>9.0f}{p['ms_per_batch']:>10.2f}{p['cpu_us_per_question']:>10.1f}"
        lines.append(f"{rate}{cells}{hits}{p['hits_at_1']:>8.3f}")
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
