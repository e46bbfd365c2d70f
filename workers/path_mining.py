"""Which relation path answers a question: mined from the KB and the gold answers.

Training questions carry no relation labels, only a topic entity and gold answers. For each
question we look for the relation path (1 to `max_hops` hops) whose end set, topic entity
excluded, best reproduces the gold answers (F1). Enumerating every path for every question
is slow at 3 hops, and single questions are ambiguous (a film's director often also wrote
it), so questions are mined in groups that share a template:

1. on a small sample of the group, enumerate every path that exists from the sample's
   topic entities, deepening one hop at a time and stopping once a path fits the sample;
2. score the best few candidates on every question of the group (one chain of sparse
   products per candidate) and give each question its best one.

The result is, per group, how many questions each path explains best.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Hashable, Iterator, Sequence

import numpy as np
import scipy.sparse as sp

from workers.kb import KnowledgeBase
from workers.paths import follow_from, step

Path = tuple[int, ...]

SAMPLE_SIZE = 8
CANDIDATES = 4
GOOD_ENOUGH_F1 = 0.95  # stop deepening once a path fits the sample this well


@dataclass(frozen=True)
class MinedQuestion:
    """A training question reduced to what mining needs."""

    group: Hashable  # questions with the same group are mined together (the template)
    topic: int
    answers: tuple[int, ...]  # gold answers found in the KB
    n_answers: int  # all gold answers, found in the KB or not


def answer_f1(kb: KnowledgeBase, reached: sp.csr_matrix, topics: np.ndarray, gold: sp.csr_matrix, n_gold: np.ndarray) -> np.ndarray:
    """Per-row F1 between the entities reached (topic excluded) and the gold answers."""
    hit = (reached > 0).astype(np.float32).tocsr()
    hit = hit - hit.multiply(kb.one_hot(topics))  # the question's own entity is never an answer
    hit.eliminate_zeros()
    n_hit = np.asarray(hit.sum(axis=1)).ravel()
    tp = np.asarray(hit.multiply(gold).sum(axis=1)).ravel()
    precision = np.divide(tp, n_hit, out=np.zeros_like(tp), where=n_hit > 0)
    recall = np.divide(tp, n_gold, out=np.zeros_like(tp), where=n_gold > 0)
    total = precision + recall
    return np.divide(2 * precision * recall, total, out=np.zeros_like(tp), where=total > 0)


def _gold_matrix(kb: KnowledgeBase, questions: Sequence[MinedQuestion]) -> sp.csr_matrix:
    rows = np.repeat(np.arange(len(questions)), [len(q.answers) for q in questions])
    cols = np.fromiter((a for q in questions for a in q.answers), dtype=np.int64, count=len(rows))
    return sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(questions), kb.num_entities)
    )


def _enumerate(
    kb: KnowledgeBase, frontier: sp.csr_matrix, start: sp.csr_matrix, prefix: Path, length: int
) -> Iterator[tuple[Path, sp.csr_matrix]]:
    """Every path of exactly `length` more hops that reaches something from `frontier`."""
    if length == 0:
        yield prefix, frontier
        return
    present = np.unique(frontier.indices)
    usable = np.unique(kb.out_relations[present].indices)
    for relation in usable:
        nxt = step(kb, frontier, int(relation), start)
        if nxt.nnz:
            yield from _enumerate(kb, nxt, start, prefix + (int(relation),), length - 1)


def _candidates(kb: KnowledgeBase, sample: Sequence[MinedQuestion], max_hops: int) -> list[Path]:
    """The best few paths on the sample, shorter first among equals."""
    topics = np.array([q.topic for q in sample])
    gold = _gold_matrix(kb, sample)
    n_gold = np.array([q.n_answers for q in sample], dtype=np.float32)
    start = kb.one_hot(topics)
    scored: list[tuple[float, int, Path]] = []
    for length in range(1, max_hops + 1):
        for path, reached in _enumerate(kb, start, start, (), length):
            scored.append((float(answer_f1(kb, reached, topics, gold, n_gold).mean()), length, path))
        if max(s for s, _, _ in scored or [(0.0, 0, ())]) >= GOOD_ENOUGH_F1:
            break
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [path for score, _, path in scored[:CANDIDATES] if score > 0]


def mine_group(kb: KnowledgeBase, questions: Sequence[MinedQuestion], max_hops: int = 3) -> Counter[Path]:
    """How many questions of one group each relation path explains best."""
    candidates = _candidates(kb, questions[:SAMPLE_SIZE], max_hops)
    if not candidates:
        return Counter()
    topics = np.array([q.topic for q in questions])
    gold = _gold_matrix(kb, questions)
    n_gold = np.array([q.n_answers for q in questions], dtype=np.float32)
    start = kb.one_hot(topics)
    f1 = np.stack([answer_f1(kb, follow_from(kb, start, p), topics, gold, n_gold) for p in candidates])
    best = f1.argmax(axis=0)  # ties go to the earlier (better on the sample) candidate
    return Counter(candidates[i] for i, score in zip(best, f1.max(axis=0)) if score > 0)


def mine(kb: KnowledgeBase, questions: Sequence[MinedQuestion], max_hops: int = 3) -> dict[Hashable, Counter[Path]]:
    """Mine every group: group -> Counter(relation path -> questions it explains best)."""
    groups: dict[Hashable, list[MinedQuestion]] = {}
    for q in questions:
        groups.setdefault(q.group, []).append(q)
    return {group: mine_group(kb, members, max_hops) for group, members in groups.items()}
