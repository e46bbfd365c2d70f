"""Following relation paths through the KB for many questions at once, and explaining them.

A batch of G walks that share one relation path r1..rk is a chain of sparse products:

    L0 = one_hot(starts)            (G x N)
    Lk = L(k-1) @ A[rk]             (G x N), Lk[g, e] = number of walks start_g -> e

so a whole batch costs k sparse matrix products, whatever the neighbourhood sizes.

Walks never come back to their start: "films that share actors with X" are the *other*
films, and their writers are the other films' writers. (MetaQA's gold answers follow this
rule at every hop, not only the last: with it 3-hop Hits@1 goes from 0.83 to ~0.99.)
Backtracking an answer e of row g picks, layer by layer, a predecessor m with
L(k-1)[g, m] > 0 and an rk edge m -> e (the one carrying most walks), also vectorised.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from reasoning.kb import KnowledgeBase


def follow(kb: KnowledgeBase, starts: np.ndarray, path: Sequence[int]) -> list[sp.csr_matrix]:
    """Walk counts after each hop of `path` from each start: `len(path) + 1` layers."""
    starts = np.asarray(starts, dtype=np.int64)
    layers = [kb.one_hot(starts)]
    for relation in path:
        layers.append(step(kb, layers[-1], relation, starts))
    return layers


def follow_from(kb: KnowledgeBase, starts: np.ndarray, path: Sequence[int]) -> sp.csr_matrix:
    """The last layer only."""
    starts = np.asarray(starts, dtype=np.int64)
    frontier = kb.one_hot(starts)
    for relation in path:
        frontier = step(kb, frontier, relation, starts)
    return frontier


def step(kb: KnowledgeBase, frontier: sp.csr_matrix, relation: int, starts: np.ndarray) -> sp.csr_matrix:
    """One hop along `relation`; walks that return to their row's start are dropped."""
    nxt = (frontier @ kb.adjacency[relation]).tocsr()
    rows = np.repeat(np.arange(nxt.shape[0]), np.diff(nxt.indptr))
    back = nxt.indices == starts[rows]
    if back.any():
        nxt.data[back] = 0
        nxt.eliminate_zeros()
    return nxt


def backtrack(
    kb: KnowledgeBase,
    layers: Sequence[sp.csr_matrix],
    path: Sequence[int],
    rows: np.ndarray,
    ends: np.ndarray,
) -> np.ndarray:
    """Entity ids of one walk per (row, end) pair: shape (len(rows), len(path) + 1).

    `ends[i]` must be reached by row `rows[i]` in the last layer.
    """
    rows = np.asarray(rows, dtype=np.int64)
    walks = np.empty((len(rows), len(path) + 1), dtype=np.int64)
    walks[:, -1] = ends
    if len(rows) == 0:
        return walks
    for hop in range(len(path), 0, -1):
        back = kb.adjacency[kb.inverse(path[hop - 1])]
        # (P x N): predecessors of each current node along the hop's relation, weighted by
        # how many walks reach them from the row's start.
        candidates = back[walks[:, hop]].multiply(layers[hop - 1][rows]).tocsr()
        walks[:, hop - 1] = _row_argmax(candidates)
    return walks


def _row_argmax(matrix: sp.csr_matrix) -> np.ndarray:
    """Column of the largest stored value of each row (rows must not be empty).

    scipy's own `argmax(axis=1)` loops over rows in Python; one lexsort does them all.
    """
    counts = np.diff(matrix.indptr)
    if (counts == 0).any():
        raise ValueError("backtracking found a node with no predecessor: layers and path disagree")
    rows = np.repeat(np.arange(matrix.shape[0]), counts)
    order = np.lexsort((-matrix.data, rows))  # by row, largest value first
    return matrix.indices[order[matrix.indptr[:-1]]]


def walk_counts(layer: sp.csr_matrix, row: int) -> tuple[np.ndarray, np.ndarray]:
    """(entity ids, walk counts) reached by one row of a layer."""
    lo, hi = layer.indptr[row], layer.indptr[row + 1]
    return layer.indices[lo:hi], layer.data[lo:hi]
