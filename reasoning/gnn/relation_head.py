"""Semantic parsing: which relation to follow at each hop, from the question vector.

MetaQA has no relation labels; the targets are relation paths mined from `qa_train`
(`reasoning.gnn.supervision`). The head is trained end to end with the first layers of the
encoder (all-MiniLM-L6-v2, `reasoning.gnn.encoder_tuning`). For a unit question vector
q ∈ R^D (the entity masked as `NE`):

    h   = GELU(W₁ q + b₁)                              h ∈ R^H
    z_t = W_t h + b_t                                  z_t ∈ R^{R+1},  t = 1 … T
    p_t = softmax(z_t)                                 over R relations and END

p_t[END] is the probability that the path stops before hop t, so the path length L has

    P(L ≥ t) = Π_{s ≤ t} (1 − p_s[END]),      P(L = t) = P(L ≥ t) · p_{t+1}[END]   (p_{T+1}[END] = 1)

and, given that it goes on, hop t follows relation r with p_t[r] / (1 − p_t[END]).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from reasoning.gnn.subgraph import HopChoices


class RelationHead(nn.Module):
    """q (B, D) → logits (B, T, R + 1); the last class of every hop is END."""

    def __init__(
        self, q_dim: int, num_relations: int, max_hops: int = 3, hidden: int = 256, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.num_relations = num_relations
        self.max_hops = max_hops
        self.body = nn.Sequential(nn.Linear(q_dim, hidden), nn.GELU(), nn.Dropout(dropout))
        self.hops = nn.Linear(hidden, max_hops * (num_relations + 1))

    def forward(self, q: Tensor) -> Tensor:
        """(B, D) → (B, T, R + 1) logits."""
        return self.hops(self.body(q)).view(-1, self.max_hops, self.num_relations + 1)

    @property
    def end(self) -> int:
        """The class index of END."""
        return self.num_relations


def length_distribution(probs: Tensor) -> Tensor:
    """P(L = t) for t = 0 … T from per-hop probabilities (B, T, R + 1): shape (B, T + 1)."""
    stop = probs[..., -1]  # (B, T)
    go_on = torch.cumprod(1.0 - stop, dim=1)  # P(L ≥ t), t = 1 … T
    at_least = torch.cat([torch.ones_like(go_on[:, :1]), go_on], dim=1)  # t = 0 … T
    stop_next = torch.cat([stop, torch.ones_like(stop[:, :1])], dim=1)  # p_{t+1}[END]
    return at_least * stop_next


def hop_choices(probs: np.ndarray, min_continue: float, min_share: float, max_relations: int) -> list[HopChoices]:
    """Per hop, the relations to expand along: those with share ≥ `min_share`, best
    `max_relations`, for questions whose path goes on with probability ≥ `min_continue`.

    `probs` is (B, T, R + 1); the weight of a relation is its share given the path goes on.
    """
    b, hops, classes = probs.shape
    stop = probs[..., -1]
    go_on = np.cumprod(1.0 - stop, axis=1)  # (B, T): P(L ≥ t)
    share = probs[..., :-1] / np.clip(1.0 - stop, 1e-9, None)[..., None]  # (B, T, R)
    ranked = np.argsort(-share, axis=2)[..., :max_relations]  # (B, T, k)
    out = []
    for t in range(hops):
        rel = ranked[:, t]  # (B, k)
        w = np.take_along_axis(share[:, t], rel, axis=1)
        ok = (w >= min_share) & (go_on[:, t : t + 1] >= min_continue)
        rows = np.nonzero(ok)
        out.append(
            HopChoices(
                question=rows[0].astype(np.int64),
                relation=rel[rows].astype(np.int64),
                weight=w[rows].astype(np.float32),
            )
        )
    return out
