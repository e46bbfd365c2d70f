"""Scoring a reasoner on a MetaQA-format file, the way the worker calls it: batches of 100.

Metrics, averaged over questions (a question the reasoner could not link counts as wrong):
- `hits_at_1`: the first answer is a gold answer;
- `hits_at_1_random_ties`: the same, with the answers tied at the top score taken in a
  random order, in expectation (gold among the tied / tied). Why: on MetaQA a merged title
  (one `King Kong` node for three films) ties candidates that no model can tell apart, and
  the strict figure then depends on the tie order (ours: entity id); this is the RANDOM
  protocol of Sun et al., ACL 2020, "A Re-evaluation of Knowledge Graph Completion Methods";
- `f1`: F1 between the set of all returned answers and the gold set;
- `exact_match`: the returned set equals the gold set;
- `entity_link_accuracy`: the reasoner's topic entity is the bracketed one.
Timing: wall time of `answer_batch` calls, and per-stage time when the reasoner keeps a
`timings` dict (seconds per stage, summed), as milliseconds per question.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reasoning.metaqa import QAPair, read_qa
from reasoning.reasoner import Reasoned, Reasoner
from schemas.question import Question

BATCH_SIZE = 100


def evaluate(reasoner: Reasoner, path: Path | str, raw_text: bool = False, limit: int | None = None) -> dict[str, Any]:
    """Evaluate on the first `limit` questions of `path`; `raw_text` removes the brackets."""
    return evaluate_pairs(reasoner, read_qa(path, limit=limit), raw_text=raw_text)


def evaluate_pairs(
    reasoner: Reasoner, pairs: Sequence[QAPair], raw_text: bool = False, batch_size: int = BATCH_SIZE
) -> dict[str, Any]:
    """Evaluate on already-read QA pairs (e.g. a sample)."""
    stages_before = dict(getattr(reasoner, "timings", {}))
    totals = {
        "hits_at_1": 0.0,
        "hits_at_1_random_ties": 0.0,
        "f1": 0.0,
        "exact_match": 0.0,
        "entity_link_accuracy": 0.0,
        "no_entity": 0.0,
    }
    batch_seconds: list[float] = []
    now = int(time.time() * 1000)
    for lo in range(0, len(pairs), batch_size):
        batch = pairs[lo : lo + batch_size]
        questions = [_question(p, raw_text, now) for p in batch]
        started = time.perf_counter()
        results = reasoner.answer_batch(questions)
        batch_seconds.append(time.perf_counter() - started)
        for pair, result in zip(batch, results):
            for key, value in score(pair, result).items():
                totals[key] += value
    n = len(pairs)
    report: dict[str, Any] = {key: value / n if n else 0.0 for key, value in totals.items()}
    seconds = sum(batch_seconds)
    report.update(
        n=n,
        raw_text=raw_text,
        reasoner=f"{reasoner.name}/{reasoner.version}",
        seconds=seconds,
        questions_per_s=n / seconds if seconds else 0.0,
        ms_per_batch=1000 * seconds / len(batch_seconds) if batch_seconds else 0.0,
    )
    for stage, spent in getattr(reasoner, "timings", {}).items():
        report[f"{stage}_ms_per_question"] = 1000 * (spent - stages_before.get(stage, 0.0)) / max(n, 1)
    return report


def score(pair: QAPair, result: Reasoned) -> dict[str, float]:
    """The per-question metrics of one answer against its gold line."""
    gold = set(pair.answers)
    predicted = [entity for entity, _ in result.answers]
    hit = float(bool(predicted) and predicted[0] in gold)
    tied = [entity for entity, value in result.answers if value == result.answers[0][1]] if predicted else []
    overlap = len(gold.intersection(predicted))
    precision = overlap / len(set(predicted)) if predicted else 0.0
    recall = overlap / len(gold) if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "hits_at_1": hit,
        "hits_at_1_random_ties": len(gold.intersection(tied)) / len(tied) if tied else 0.0,
        "f1": f1,
        "exact_match": float(set(predicted) == gold),
        "entity_link_accuracy": float(result.topic_entity is not None and result.topic_entity == pair.topic_entity),
        "no_entity": float(result.status == "no_entity"),
    }


def _question(pair: QAPair, raw_text: bool, ts: int) -> Question:
    return Question(
        question_id=uuid.uuid4(),
        service="eval",
        user_id="eval",
        text=pair.raw_text if raw_text else pair.question,
        ts=ts,
    )
