"""From numpy subgraphs to the tensors `QuestionGAT` reads (one disjoint-union batch).

Node features (F = T + 5 columns):

    one-hot hop layer (T + 1) | is the topic entity | P(L = layer | q) | walk mass | log1p(in-degree) / 4

`P(L = layer | q)` comes from the relation head, so the network knows which layer the
question most likely wants its answers from; `is the topic entity` marks every copy of the
topic, at any depth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from reasoning.gnn.subgraph import Subgraphs


def node_dim(max_hops: int) -> int:
    return max_hops + 5


@dataclass
class GraphTensors:
    x: Tensor  # (V, F) float32
    q: Tensor  # (B, D) float32
    batch: Tensor  # (V,) long
    edge_index: Tensor  # (2, E) long
    relation: Tensor  # (E,) long
    hop: Tensor  # (E,) long
    weight: Tensor  # (E,) float32

    def inputs(self) -> tuple[Tensor, ...]:
        """Positional arguments of `QuestionGAT.forward`."""
        return (self.x, self.q, self.batch, self.edge_index, self.relation, self.hop, self.weight)


def node_features(sub: Subgraphs, length_probs: np.ndarray, max_hops: int) -> np.ndarray:
    """(V, F) float32; `length_probs` is (B, T + 1), P(L = t) per question."""
    v = sub.num_nodes
    x = np.zeros((v, node_dim(max_hops)), dtype=np.float32)
    x[np.arange(v), sub.layer] = 1.0
    topics = sub.entity[: sub.num_questions]
    x[:, max_hops + 1] = sub.entity == topics[sub.question]
    x[:, max_hops + 2] = length_probs[sub.question, sub.layer]
    x[:, max_hops + 3] = sub.mass
    x[:, max_hops + 4] = np.log1p(np.bincount(sub.dst, minlength=v)) / 4.0
    return x


def to_tensors(
    sub: Subgraphs, q: np.ndarray, length_probs: np.ndarray, max_hops: int, device: torch.device
) -> GraphTensors:
    """Everything on `device`, ready for one forward pass."""

    def put(array: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(device)

    return GraphTensors(
        x=put(node_features(sub, length_probs, max_hops)),
        q=put(q.astype(np.float32, copy=False)),
        batch=put(sub.question),
        edge_index=put(np.stack([sub.src, sub.dst])),
        relation=put(sub.relation),
        hop=put(sub.layer[sub.dst]),
        weight=put(sub.weight),
    )
