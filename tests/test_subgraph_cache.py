"""The subgraph cache and cost estimates of the GNN reasoner, on the real KB and checkpoint.

The cache must never change an answer (it rebuilds exactly what `expand` would), stay
within its bounds, and count what it does; `estimate_costs` must give the subgraph sizes
the answers are then computed on, without linking or expanding a second time.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import fields

import numpy as np
import pytest

from reasoning.gnn.reasoner import GnnReasoner
from reasoning.gnn.subgraph import HopChoices, Subgraphs, expand
from reasoning.gnn.subgraph_cache import ENTRY_OVERHEAD, SubgraphCache, assemble, select, split
from reasoning.metaqa import HOPS, qa_file, read_qa
from schemas.question import Question
from schemas.settings import Settings
from workers.splitting import answer_within_budget

PER_HOP = 40


@pytest.fixture(scope="module")
def reasoner() -> GnnReasoner:
    return GnnReasoner.load(Settings(kb_path=None, reasoner="gnn", device="cpu", subgraph_cache_size=0))


@pytest.fixture(scope="module")
def questions() -> list[Question]:
    """1-, 2- and 3-hop qa_val questions shuffled together, raw text, plus one with no entity."""
    pairs = [p for hop in HOPS for p in random.Random(0).sample(read_qa(qa_file(hop, "val")), PER_HOP)]
    random.Random(1).shuffle(pairs)
    texts = [p.raw_text for p in pairs] + ["xqzvv blorfwug snarkle"]
    return [Question(question_id=uuid.uuid4(), service="t", user_id="u", text=t, ts=i) for i, t in enumerate(texts)]


def answer_in_batches(reasoner: GnnReasoner, questions: list[Question], size: int) -> list:
    return [r for i in range(0, len(questions), size) for r in reasoner.answer_batch(questions[i : i + size])]


def assert_same(a: Subgraphs, b: Subgraphs) -> None:
    for f in fields(Subgraphs):
        x, y = getattr(a, f.name), getattr(b, f.name)
        assert np.array_equal(x, y) and np.asarray(x).dtype == np.asarray(y).dtype, f.name


def prepared_graphs(reasoner: GnnReasoner, questions: list[Question]):
    """Topics, hop choices and the union `expand` makes of them, for the linked questions."""
    from reasoning.gnn.relation_head import hop_choices

    graphs = reasoner.prepare(questions).graphs
    probs, _ = reasoner.relations(graphs.q)
    cfg = reasoner.config
    return graphs.topics, hop_choices(probs, cfg.min_continue, cfg.min_share, cfg.max_relations), graphs.sub


def test_pieces_rebuild_exactly_what_expand_makes_in_any_batch(reasoner: GnnReasoner, questions) -> None:
    topics, hops, sub = prepared_graphs(reasoner, questions)
    pieces = split(sub)
    assert len(pieces) == sub.num_questions
    assert_same(assemble(pieces), sub)
    # Another batch of the same questions: a subset, in its own order, expanded afresh.
    rows = list(range(0, len(topics), 3))
    fresh = expand(reasoner.index, topics[rows], select(hops, rows, len(topics)), reasoner.max_nodes)
    assert_same(assemble([pieces[i] for i in rows]), fresh)


def test_answers_identical_with_the_cache_on_or_off(reasoner: GnnReasoner, questions) -> None:
    off = answer_in_batches(reasoner, questions, 50)
    linked = len(questions) - 1  # the last one has no entity
    reasoner.subgraph_cache = SubgraphCache(10_000)
    try:
        filled = answer_in_batches(reasoner, questions[:60], 40)  # all misses
        mixed = answer_in_batches(reasoner, questions, 70)  # the first 60 hit, the rest miss
        again = answer_in_batches(reasoner, questions, 33)  # all hit, in other batches
        stats = reasoner.cache_stats()["subgraph"]
    finally:
        reasoner.subgraph_cache = SubgraphCache(0)
    assert filled == off[:60] and mixed == off and again == off
    assert stats == {"hits": 60 + linked, "misses": linked, "size": linked, "capacity": 10_000}
    assert sum(r.status == "ok" and len(r.paths[0]) == 7 for r in off) >= PER_HOP - 2  # 3-hop ones took part


def synthetic(reasoner: GnnReasoner, n: int) -> tuple[np.ndarray, list[HopChoices]]:
    """`n` questions, one per film, following `directed_by` one hop."""
    kb = reasoner.kb
    relation = kb.relation_id("directed_by")
    films = [e for e in range(kb.num_entities) if len(kb.neighbors(e, relation))][:n]
    hop = HopChoices(np.arange(n, dtype=np.int64), np.full(n, relation, dtype=np.int64), np.ones(n, np.float32))
    return np.array(films, dtype=np.int64), [hop]


def test_lru_bounds_and_counts(reasoner: GnnReasoner) -> None:
    topics, hops = synthetic(reasoner, 8)
    cache = SubgraphCache(capacity=5)
    cache.expand(reasoner.index, topics, hops, 50, width=1)
    assert (len(cache), cache.hits, cache.misses) == (5, 0, 8)  # the first three evicted
    cache.expand(reasoner.index, topics[[3, 7]], select(hops, [3, 7], 8), 50, width=1)
    assert (cache.hits, cache.misses) == (2, 8)
    cache.expand(reasoner.index, topics[:1], select(hops, [0], 8), 50, width=1)
    assert (cache.hits, cache.misses, len(cache)) == (2, 9, 5)  # 0 came back, 4 (least recent) went
    assert cache.stats() == {"hits": 2, "misses": 9, "size": 5, "capacity": 5}

    small = SubgraphCache(capacity=1000, max_bytes=3 * (ENTRY_OVERHEAD + 60))
    small.expand(reasoner.index, topics, hops, 50, width=1)
    assert 0 < len(small) <= 3 and small.nbytes <= small.max_bytes

    off = SubgraphCache(0)
    assert_same(off.expand(reasoner.index, topics, hops, 50, width=1), expand(reasoner.index, topics, hops, 50))
    assert (len(off), off.misses) == (0, 8)


def test_cache_stats_shape(reasoner: GnnReasoner) -> None:
    stats = reasoner.cache_stats()
    assert set(stats) == {"encode", "subgraph"}
    for part in stats.values():
        assert set(part) == {"hits", "misses", "size", "capacity"}
        assert all(isinstance(v, int) and v >= 0 for v in part.values())


def test_estimates_are_the_subgraph_sizes_and_are_not_paid_twice(reasoner: GnnReasoner, questions) -> None:
    costs = reasoner.estimate_costs(questions)
    assert len(costs) == len(questions) and costs[-1] == 0.0  # no entity: never reaches the GNN
    linked_before = reasoner.timings["link"]
    results = reasoner.answer_batch(questions)
    assert reasoner.timings["link"] == linked_before, "answer_batch linked again after estimate_costs"
    assert not reasoner.holds_estimate
    sub = reasoner.prepare(questions).graphs.sub
    assert sum(costs) == sub.num_nodes + sub.num_edges
    assert results == reasoner.answer_batch(questions)
    # Longer questions cost more: mean cost grows with hops.
    hops = np.array([len(r.paths[0]) // 2 if r.status == "ok" and r.paths else 0 for r in results])
    means = [np.mean(np.array(costs)[hops == h]) for h in HOPS]
    assert means[0] < means[1] < means[2], means


class CountingReasoner:
    """The real reasoner, recording the questions of each `answer_batch` call (the chunks
    `workers.splitting.answer_within_budget` makes)."""

    def __init__(self, reasoner: GnnReasoner) -> None:
        self.reasoner = reasoner
        self.calls: list[list[uuid.UUID]] = []

    def estimate_costs(self, questions: list[Question]) -> list[float]:
        return self.reasoner.estimate_costs(questions)

    def answer_batch(self, questions: list[Question]) -> list:
        self.calls.append([q.question_id for q in questions])
        return self.reasoner.answer_batch(questions)


def test_a_tiny_budget_splits_into_chunks_with_the_same_answers(reasoner: GnnReasoner, questions) -> None:
    # newest first in the batch: serving the oldest first reverses the chunks' order, and the
    # results must still come back in the batch's order
    asked = [q.model_copy(update={"ts": len(questions) - i}) for i, q in enumerate(questions)]
    whole = reasoner.answer_batch(asked)
    budget = 400.0
    costs = reasoner.prepare(asked).costs().tolist()  # what the estimate gives
    assert sum(costs) > 3 * budget  # far over budget as a whole
    counting = CountingReasoner(reasoner)
    results = answer_within_budget(counting, asked, budget)  # the worker's own call
    position = {q.question_id: i for i, q in enumerate(asked)}
    chunks = [[position[q] for q in call] for call in counting.calls]
    assert len(chunks) > 3, "a batch over budget was not split"
    oldest_first = sorted(range(len(asked)), key=lambda i: asked[i].ts)
    assert [i for chunk in chunks for i in chunk] == oldest_first
    assert all(sum(costs[i] for i in chunk) <= budget for chunk in chunks if len(chunk) > 1)
    assert len(results) == len(asked)
    assert not reasoner.holds_estimate
    fresh: list = [None] * len(asked)
    for chunk in chunks:  # the same chunks without an estimate first: bit-identical, in batch order
        for i, result in zip(chunk, reasoner.answer_batch([asked[i] for i in chunk]), strict=True):
            fresh[i] = result
    assert results == fresh
    # Against the unsplit batch, only the GNN's float sums over a different union differ.
    for a, b in zip(results, whole, strict=True):
        assert (a.status, [e for e, _ in a.answers], a.paths) == (b.status, [e for e, _ in b.answers], b.paths)
        assert np.allclose([s for _, s in a.answers], [s for _, s in b.answers], atol=1e-5)
