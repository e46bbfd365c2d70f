"""From node scores to answers: the answer set, its scores and one reasoning path per answer.

An entity's score is the best score of its copies (an entity may sit at several hop
layers); the topic's own layer-0 node is never an answer. The answer set is every entity
scoring at least `threshold` (tuned on `qa_val`), and always the best one, so a question
that reached anything gets a first answer; at most `max_answers`, best first.

Paths are backtracked from the attention: every node's parent is its in-edge with the
highest last-layer attention, and layers strictly decrease along in-edges, so following
parents from an answer at layer t reaches the topic in exactly t steps:

    topic —r₁→ e₁ —r₂→ … —r_t→ answer
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reasoning.gnn.subgraph import Subgraphs


@dataclass(frozen=True)
class Decoded:
    """The answers of one question, as KB ids."""

    entities: np.ndarray  # (A,) int64, best first
    scores: np.ndarray  # (A,) float32 in [0, 1]
    walks: np.ndarray  # (A, 2 S + 1) int64: entity, relation, entity, … right-aligned, −1 padded
    depth: np.ndarray  # (A,) int64: hops of each walk; walk i is walks[i, 2 (S − depth[i]):]

    def walk(self, i: int) -> np.ndarray:
        """[entity, relation, entity, …] ids of answer i."""
        return self.walks[i, self.walks.shape[1] - 1 - 2 * int(self.depth[i]) :]


def best_parents(sub: Subgraphs, attention: np.ndarray) -> np.ndarray:
    """(V,) the in-edge of each node with the highest attention, −1 for layer 0."""
    parent = np.full(sub.num_nodes, -1, dtype=np.int64)
    if sub.num_edges == 0:
        return parent
    order = np.lexsort((-attention, sub.dst))  # by target, best edge first
    first = np.ones(len(order), dtype=bool)
    first[1:] = sub.dst[order][1:] != sub.dst[order][:-1]
    parent[sub.dst[order[first]]] = order[first]
    return parent


def walks_to(sub: Subgraphs, parent: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """(len(nodes), 2 S + 1): entity, relation, entity, … ids from each node's topic to it,
    right-aligned (a walk of t hops fills the last 2 t + 1 columns, −1 before), vectorised."""
    steps = int(sub.layer[nodes].max()) if len(nodes) else 0
    walks = np.full((len(nodes), 2 * steps + 1), -1, dtype=np.int64)
    current = nodes.copy()
    walks[:, -1] = sub.entity[current]
    for back in range(steps):
        live = sub.layer[current] > 0
        edge = parent[current[live]]
        column = 2 * (steps - back) - 1  # the relation entering the current node
        walks[live, column] = sub.relation[edge]
        current[live] = sub.src[edge]
        walks[live, column - 1] = sub.entity[current[live]]
    return walks


def decode(
    sub: Subgraphs, scores: np.ndarray, attention: np.ndarray, threshold: float, max_answers: int
) -> list[Decoded]:
    """Per question of the batch, its answer set with scores and walks."""
    n_entities = int(sub.entity.max()) + 1 if sub.num_nodes else 1
    nodes = np.flatnonzero(sub.layer > 0)
    order = nodes[np.lexsort((sub.entity[nodes], -scores[nodes], sub.question[nodes]))]
    # The best copy of each (question, entity): the first one in this order.
    _, first = np.unique(sub.question[order] * n_entities + sub.entity[order], return_index=True)
    best = order[np.sort(first)]  # still by question, then score descending
    q = sub.question[best]
    counts = np.bincount(q, minlength=sub.num_questions)
    rank = np.arange(len(best)) - np.repeat(np.cumsum(counts) - counts, counts)
    chosen = best[(rank == 0) | ((scores[best] >= threshold) & (rank < max_answers))]
    walks = walks_to(sub, best_parents(sub, attention), chosen)
    depth = sub.layer[chosen]
    bounds = np.cumsum(np.bincount(sub.question[chosen], minlength=sub.num_questions))
    out, lo = [], 0
    for hi in bounds:
        out.append(
            Decoded(
                entities=sub.entity[chosen[lo:hi]],
                scores=scores[chosen[lo:hi]].astype(np.float32),
                walks=walks[lo:hi],
                depth=depth[lo:hi],
            )
        )
        lo = hi
    return out
