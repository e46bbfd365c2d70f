"""After training: the answer-set threshold tuned on `qa_val`, the figures, the data checksums.

The threshold is the one score every answer set is cut at. It is tuned once for F1,
macro-averaged over the hops of vanilla and NTM `qa_val`: each `qa_val` question is answered once with every answer
kept (best first), and each threshold keeps a prefix of that list, never empty.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from typing import Any

import numpy as np
from tqdm import tqdm

from reasoning.evaluate import evaluate_pairs, score
from reasoning.gnn.checkpoint import Checkpoint
from reasoning.gnn.encode_cache import TextEncoder
from reasoning.kb import KnowledgeBase, file_sha256
from reasoning.metaqa import HOPS, KB_FILE, VARIANTS, Variant, qa_file, read_qa
from reasoning.reasoner import Reasoned
from schemas.question import Question
from schemas.settings import REPO_ROOT, Settings

GRID = [round(float(x), 2) for x in np.arange(0.05, 0.96, 0.05)]
FIGURES = ("hits_at_1", "f1", "exact_match", "entity_link_accuracy", "no_entity", "n")


def tune_and_evaluate(
    kb: KnowledgeBase, encoder: TextEncoder, checkpoint: Checkpoint, settings: Settings, limit: int | None
) -> tuple[float, dict[str, Any]]:
    """(threshold, figures): the F1-best threshold, then every hop scored bracketed and raw."""
    from reasoning.gnn.reasoner import GnnReasoner

    reasoner = GnnReasoner(
        kb,
        encoder,
        checkpoint,
        max_nodes=settings.max_subgraph_nodes,
        max_answers=settings.max_answers,
        encode_cache=settings.encode_cache_size,
        subgraph_cache=settings.subgraph_cache_size,
    )
    sets = [(variant, hop) for variant in VARIANTS for hop in HOPS]
    pairs = {s: read_qa(qa_file(s[1], "val", s[0]), limit=limit) for s in sets}
    reasoner.config.threshold = 0.0  # every answer, best first: thresholds then cut a prefix
    results: dict[tuple[Variant, int], list[Reasoned]] = {}
    for s in sets:
        results[s] = []
        for lo in tqdm(range(0, len(pairs[s]), 100), desc=f"tune {s[0]} {s[1]}-hop", unit="batch"):
            results[s] += reasoner.answer_batch([_question(p.question) for p in pairs[s][lo : lo + 100]])
    f1 = {
        x: float(np.mean([np.mean([score(p, cut(r, x))["f1"] for p, r in zip(pairs[s], results[s])]) for s in sets]))
        for x in GRID
    }
    best = max(GRID, key=lambda x: (round(f1[x], 4), -abs(x - 0.5)))
    reasoner.config.threshold = best
    metrics: dict[str, Any] = {"threshold": best, "threshold_f1": {str(k): round(v, 4) for k, v in f1.items()}}
    for variant, hop in sets:
        for raw in (False, True):
            report = evaluate_pairs(reasoner, pairs[(variant, hop)], raw_text=raw)
            metrics[figure_key(variant, hop, raw)] = {k: round(report[k], 4) for k in FIGURES}
    return best, metrics


def figure_key(variant: Variant, hop: int, raw: bool) -> str:
    """`1hop_raw` (vanilla, the name figures had before NTM) or `ntm_1hop_raw`."""
    prefix = "" if variant == "vanilla" else f"{variant}_"
    return f"{prefix}{hop}hop_{'raw' if raw else 'bracketed'}"


def cut(result: Reasoned, threshold: float) -> Reasoned:
    """The answer set the threshold keeps: a prefix of the best-first answers, never empty."""
    keep = [k for k, (_, s) in enumerate(result.answers) if k == 0 or s >= threshold]
    return replace(result, answers=[result.answers[k] for k in keep], paths=[result.paths[k] for k in keep])


def data_checksums() -> dict[str, str]:
    """sha256 of the KB and every MetaQA file (vanilla and NTM) training and tuning read, by
    repository path."""
    files = [KB_FILE] + [qa_file(h, s, v) for v in VARIANTS for h in HOPS for s in ("train", "val")]
    return {str(f.relative_to(REPO_ROOT)): file_sha256(f) for f in files}


def by_data_file(checksums: dict[str, str]) -> dict[str, str]:
    """`checksums` keyed from the `metaqa/` folder on (`metaqa/1-hop/qa_val.txt`), so a
    checkpoint trained before the data folder moved (`workers/data/` became
    `reasoning/data/`) still matches the same bytes; the checksums, not the paths, decide."""
    return {name[name.index("metaqa/") :] if "metaqa/" in name else name: sha for name, sha in checksums.items()}


def print_figures(metrics: dict[str, Any]) -> None:
    print(f"{'qa_val':<24}{'Hits@1':>8}{'F1':>8}{'EM':>8}{'link':>8}{'n':>6}")
    for variant in VARIANTS:
        for hop in HOPS:
            for raw in (False, True):
                m = metrics.get(figure_key(variant, hop, raw))
                if m:
                    cells = "".join(f"{m[k]:>8.4f}" for k in ("hits_at_1", "f1", "exact_match", "entity_link_accuracy"))
                    name = f"{variant} {hop}-hop {'raw' if raw else 'bracketed'}"
                    print(f"{name:<24}{cells}{m['n']:>6}")


def _question(text: str) -> Question:
    return Question(question_id=uuid.uuid4(), service="train", user_id="train", text=text, ts=int(time.time() * 1000))
