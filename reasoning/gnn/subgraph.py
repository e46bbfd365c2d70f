"""Weighted, layered subgraphs around topic entities, for a whole batch at once.

Each question expands from its topic entity one hop at a time, only along the relations its
relation head predicted for that hop (`HopChoices`), each edge weighted by that relation's
predicted relevance. Layer t holds the entities reached after exactly t hops, so an entity
reached at two depths appears once per depth and the graph is a DAG layer 0 → 1 → … → T:
message passing along it follows the question's hops, never back.

Pruning is relevance-guided: a node's mass is the relevance-weighted walk count

    m_t(v) = Σ_{(u, r, v)} m_{t-1}(u) · w_t(r),     m_0(topic) = 1

and each question keeps its heaviest nodes until `max_nodes` are used (ties by entity id,
so results are deterministic). Masses are rescaled to max 1 per question and layer.

Everything is numpy over one relation-stacked CSR index: no Python loop per question, node
or edge. All questions of a batch share the arrays (a disjoint union), so the GNN runs once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from reasoning.kb import KnowledgeBase


@dataclass(frozen=True)
class HopChoices:
    """The relations each question expands along at one hop. Rows sorted by question."""

    question: np.ndarray  # (C,) int64, ascending
    relation: np.ndarray  # (C,) int64, KB relation id (forward or inverse)
    weight: np.ndarray  # (C,) float32 in (0, 1]: the relation's predicted relevance


@dataclass
class Subgraphs:
    """A disjoint union of layered subgraphs, one per question, as flat arrays.

    Nodes are numbered layer by layer; the first `num_questions` nodes are the topic
    entities (layer 0), node i of layer 0 belonging to question i.
    """

    num_questions: int
    question: np.ndarray  # (V,) int64: the question a node belongs to
    entity: np.ndarray  # (V,) int64: KB entity id
    layer: np.ndarray  # (V,) int64: hops from the topic entity
    mass: np.ndarray  # (V,) float32 in (0, 1]: relevance-weighted walk mass, max 1 per layer
    src: np.ndarray  # (E,) int64 node index, layer t - 1
    dst: np.ndarray  # (E,) int64 node index, layer t
    relation: np.ndarray  # (E,) int64 KB relation id
    weight: np.ndarray  # (E,) float32 relevance of the edge's relation at its hop
    truncated: np.ndarray  # (B,) bool: the node budget cut something off

    @property
    def num_nodes(self) -> int:
        return len(self.entity)

    @property
    def num_edges(self) -> int:
        return len(self.src)

    def nodes_per_question(self) -> np.ndarray:
        return np.bincount(self.question, minlength=self.num_questions)


class RelationIndex:
    """Every relation's CSR adjacency stacked: row `r * N + e` lists e's targets along r."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.num_entities = kb.num_entities
        self.num_relations = kb.num_relations
        pointers, targets, offset = [], [], 0
        for adjacency in kb.adjacency:
            pointers.append(adjacency.indptr[:-1].astype(np.int64) + offset)
            targets.append(adjacency.indices.astype(np.int64))
            offset += adjacency.nnz
        self.indptr = np.concatenate(pointers + [np.array([offset], dtype=np.int64)])
        self.indices = np.concatenate(targets)

    def follow(self, entities: np.ndarray, relations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(which input pair, target entity) for every edge leaving `entities[i]` along `relations[i]`."""
        rows = relations * self.num_entities + entities
        starts = self.indptr[rows]
        lengths = self.indptr[rows + 1] - starts
        owner = np.repeat(np.arange(len(rows)), lengths)
        return owner, self.indices[ragged_arange(starts, lengths)]


def ragged_arange(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """`concat(arange(s, s + l) for s, l in zip(starts, lengths))`, vectorised."""
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    ends = np.cumsum(lengths)
    return np.arange(total, dtype=np.int64) + np.repeat(starts - (ends - lengths), lengths)


def expand(index: RelationIndex, topics: np.ndarray, hops: Sequence[HopChoices], max_nodes: int) -> Subgraphs:
    """Layered subgraphs from `topics` (one per question) along each hop's chosen relations."""
    n_entities = index.num_entities
    b = len(topics)
    topics = np.asarray(topics, dtype=np.int64)
    question, entity, layer, mass = [np.arange(b)], [topics], [np.zeros(b, np.int64)], [np.ones(b, np.float32)]
    src, dst, relation, weight = [], [], [], []
    used = np.ones(b, dtype=np.int64)
    truncated = np.zeros(b, dtype=bool)
    frontier = (np.arange(b), np.arange(b), topics, np.ones(b))  # (node id, question, entity, mass)
    next_id = b
    for t, choice in enumerate(hops, start=1):
        f_id, f_q, f_e, f_m = frontier
        # Pair each frontier node with every relation its question expands along at hop t.
        per_question = np.bincount(choice.question, minlength=b)
        first = np.cumsum(per_question) - per_question
        pick = ragged_arange(first[f_q], per_question[f_q])
        pair_node = np.repeat(np.arange(len(f_id)), per_question[f_q])
        owner, target = index.follow(f_e[pair_node], choice.relation[pick])
        if len(target) == 0:
            break
        e_node = pair_node[owner]  # frontier position of each edge's source
        e_rel = choice.relation[pick][owner]
        e_w = choice.weight[pick][owner]
        # One node per (question, entity) at this layer; mass flows along weighted edges.
        key = f_q[e_node] * n_entities + target
        unique, inverse = np.unique(key, return_inverse=True)
        n_q, n_e = unique // n_entities, unique % n_entities
        n_m = np.bincount(inverse, weights=f_m[e_node] * e_w, minlength=len(unique))
        kept, order = _keep_heaviest(n_q, n_e, n_m, max_nodes - used)
        truncated |= np.bincount(n_q[~kept], minlength=b) > 0
        new_id = np.full(len(unique), -1, dtype=np.int64)
        kept_order = order[kept[order]]  # kept nodes, by question then mass: the layer's node order
        new_id[kept_order] = next_id + np.arange(len(kept_order))
        next_id += len(kept_order)
        used += np.bincount(n_q[kept_order], minlength=b)
        keep_edge = new_id[inverse] >= 0
        src.append(f_id[e_node[keep_edge]])
        dst.append(new_id[inverse[keep_edge]])
        relation.append(e_rel[keep_edge])
        weight.append(e_w[keep_edge].astype(np.float32))
        k_q, k_e, k_m = n_q[kept_order], n_e[kept_order], n_m[kept_order]
        k_m = (k_m / _group_max(k_q, k_m, b)[k_q]).astype(np.float32)
        question.append(k_q)
        entity.append(k_e)
        layer.append(np.full(len(k_q), t, dtype=np.int64))
        mass.append(k_m)
        frontier = (new_id[kept_order], k_q, k_e, k_m.astype(np.float64))
        if len(kept_order) == 0:
            break
    return Subgraphs(
        num_questions=b,
        question=np.concatenate(question),
        entity=np.concatenate(entity),
        layer=np.concatenate(layer),
        mass=np.concatenate(mass),
        src=_cat(src, np.int64),
        dst=_cat(dst, np.int64),
        relation=_cat(relation, np.int64),
        weight=_cat(weight, np.float32),
        truncated=truncated,
    )


def _keep_heaviest(q: np.ndarray, e: np.ndarray, m: np.ndarray, room: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mask of nodes kept, order by question then mass desc then entity): top `room[q]` per question."""
    order = np.lexsort((e, -m, q))
    q_sorted = q[order]
    counts = np.bincount(q_sorted, minlength=len(room))
    rank = np.arange(len(order)) - np.repeat(np.cumsum(counts) - counts, counts)
    kept = np.zeros(len(q), dtype=bool)
    kept[order] = rank < room[q_sorted]
    return kept, order


def _group_max(q: np.ndarray, m: np.ndarray, b: int) -> np.ndarray:
    """Per question, the largest mass (1 where a question has no node, to divide safely)."""
    out = np.zeros(b, dtype=np.float64)
    np.maximum.at(out, q, m)
    return np.where(out > 0, out, 1.0)


def _cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.empty(0, dtype=dtype)
