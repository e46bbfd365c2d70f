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
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from reasoning.kb import KnowledgeBase
from reasoning.paths import follow_from, step

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


def answer_f1(reached: sp.csr_matrix, gold: sp.csr_matrix, n_gold: np.ndarray) -> np.ndarray:
    """Per-row F1 between the entities reached and the gold answers (both G x N)."""
    n = reached.shape[1]
    reached_rows = np.repeat(np.arange(reached.shape[0]), np.diff(reached.indptr))
    gold_rows = np.repeat(np.arange(gold.shape[0]), np.diff(gold.indptr))
    # (row, entity) pairs as one int64 each: set intersection in numpy, no sparse algebra.
    hits = np.isin(reached_rows * n + reached.indices, gold_rows * n + gold.indices)
    tp = np.bincount(reached_rows[hits], minlength=reached.shape[0]).astype(np.float64)
    n_hit = np.diff(reached.indptr).astype(np.float64)
    precision = np.divide(tp, n_hit, out=np.zeros_like(tp), where=n_hit > 0)
    recall = np.divide(tp, n_gold, out=np.zeros_like(tp), where=n_gold > 0)
    total = precision + recall
    return np.divide(2 * precision * recall, total, out=np.zeros_like(tp), where=total > 0)


def _gold_matrix(kb: KnowledgeBase, questions: Sequence[MinedQuestion]) -> sp.csr_matrix:
    rows = np.repeat(np.arange(len(questions)), [len(q.answers) for q in questions])
    cols = np.fromiter((a for q in questions for a in q.answers), dtype=np.int64, count=len(rows))
    gold = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(questions), kb.num_entities))
    gold.sum_duplicates()
    return gold


def _enumerate(
    kb: KnowledgeBase, frontier: sp.csr_matrix, starts: np.ndarray, prefix: Path, length: int
) -> Iterator[tuple[Path, sp.csr_matrix]]:
    """Every path of exactly `length` more hops that reaches something from `frontier`."""
    if length == 0:
        yield prefix, frontier
        return
    present = np.unique(frontier.indices)
    usable = np.unique(kb.out_relations[present].indices)
    for relation in usable:
        nxt = step(kb, frontier, int(relation), starts)
        if nxt.nnz:
            yield from _enumerate(kb, nxt, starts, prefix + (int(relation),), length - 1)


def _candidates(kb: KnowledgeBase, samples: Sequence[Sequence[MinedQuestion]], max_hops: int) -> list[list[Path]]:
    """The best few paths of each group on its sample, shorter first among equals.

    The samples of many groups are stacked into one matrix, so each path is enumerated
    once per block of groups rather than once per group (sparse calls cost mostly overhead).
    A group stops deepening once one of its paths fits its sample well enough.
    """
    rows = [q for sample in samples for q in sample]
    owner = np.repeat(np.arange(len(samples)), [len(s) for s in samples])
    size = np.bincount(owner, minlength=len(samples)).astype(np.float64)
    scored: list[list[tuple[float, int, Path]]] = [[] for _ in samples]
    active = np.ones(len(samples), dtype=bool)
    for length in range(1, max_hops + 1):
        keep = np.flatnonzero(active[owner])
        sub = [rows[i] for i in keep]
        topics = np.array([q.topic for q in sub])
        gold = _gold_matrix(kb, sub)
        n_gold = np.array([q.n_answers for q in sub], dtype=np.float64)
        for path, reached in _enumerate(kb, kb.one_hot(topics), topics, (), length):
            mean = np.bincount(owner[keep], weights=answer_f1(reached, gold, n_gold), minlength=len(samples)) / size
            for g in np.flatnonzero(mean > 0):
                scored[g].append((float(mean[g]), length, path))
        for g in np.flatnonzero(active):
            active[g] = max((s for s, _, _ in scored[g]), default=0.0) < GOOD_ENOUGH_F1
        if not active.any():
            break
    out = []
    for group in scored:
        group.sort(key=lambda item: (-item[0], item[1]))
        out.append([path for _, _, path in group[:CANDIDATES]])
    return out


def _assign(kb: KnowledgeBase, questions: Sequence[MinedQuestion], candidates: Sequence[Path]) -> Counter[Path]:
    """Give each question of a group the candidate that explains it best; count them."""
    if not candidates:
        return Counter()
    topics = np.array([q.topic for q in questions])
    gold = _gold_matrix(kb, questions)
    n_gold = np.array([q.n_answers for q in questions], dtype=np.float64)
    f1 = np.stack([answer_f1(follow_from(kb, topics, p), gold, n_gold) for p in candidates])
    best = f1.argmax(axis=0)  # ties go to the earlier (better on the sample) candidate
    return Counter(candidates[i] for i, score in zip(best, f1.max(axis=0)) if score > 0)


def mine(
    kb: KnowledgeBase, questions: Sequence[MinedQuestion], max_hops: int = 3, block: int = 32
) -> dict[Hashable, Counter[Path]]:
    """Mine every group: group -> Counter(relation path -> questions it explains best)."""
    groups: dict[Hashable, list[MinedQuestion]] = {}
    for q in questions:
        groups.setdefault(q.group, []).append(q)
    names = list(groups)
    mined: dict[Hashable, Counter[Path]] = {}
    for lo in range(0, len(names), block):
        chunk = names[lo : lo + block]
        candidates = _candidates(kb, [groups[g][:SAMPLE_SIZE] for g in chunk], max_hops)
        for group, paths in zip(chunk, candidates):
            mined[group] = _assign(kb, groups[group], paths)
    return mined
