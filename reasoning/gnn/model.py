r"""The reasoner's graph attention network: question-conditioned GATv2 over layered subgraphs.

Shapes: V nodes, E edges, B questions, D question-vector size, F node features, H hidden
units, K attention heads, R relations (forward and inverse), T maximum hops.

Inputs (see `reasoning.gnn.tensors`):

    x ∈ R^{V×F}     node features (hop layer, is-topic flag, P(L = layer | q), walk mass, in-degree)
    q ∈ R^{B×D}     question vectors (encoder output);  b(v) ∈ {0 … B−1} the question of node v
    (j → i) ∈ E     edges from hop layer t − 1 to t, relation r_ji, hop t_ji, relevance w_ji ∈ [0, 1]

Question and edges:

    u_b   = tanh(W_q q_b)                                                     u ∈ R^{B×H}
    e_ji  = emb_R(r_ji) ⊙ σ(W_g u_{b(i)}) + emb_T(t_ji) + w_ji · c            e ∈ R^{E×H}

so an edge's feature says which relation it is, how much this question cares about that
relation (gate) and how much the relation head believed in it (w).

Layer l = 1 … L, with FiLM conditioning on the question before attention:

    ĥ_v     = (1 + γ_l(u_{b(v)})) ⊙ h_v + β_l(u_{b(v)})
    α^k_ji  = softmax_{j ∈ N(i)} ( a_kᵀ LeakyReLU(W^k_s ĥ_j + W^k_t ĥ_i + W^k_e e_ji) )      (GATv2)
    m_i     = ‖_{k=1…K} Σ_{j ∈ N(i)} α^k_ji W^k_s ĥ_j                                     m ∈ R^{V×H}
    h_i     ← LayerNorm(h_i + ELU(m_i))

with h⁰_v = W_x x_v + u_{b(v)}. Attention is over a node's in-edges, i.e. over the ways it
was reached; a softmax can put all its weight on the one predecessor that makes a node an
answer (say, a film that is not the topic entity itself), which is what MetaQA's multi-hop
answers need. Readout, one logit per node:

    s_v = W₂ GELU(W₁ [h^L_v ; u_{b(v)} ; x_v])

The last layer's attention (mean over heads), α_ji ∈ [0, 1]^E, explains answers: following
each node's highest-attention in-edge back to layer 0 gives its reasoning path.
"""

from __future__ import annotations

import tempfile

import torch
from torch import Tensor, nn
from torch_geometric.nn import GATv2Conv


class QuestionGAT(nn.Module):
    """Scores every node of a batch of layered subgraphs for one question each."""

    def __init__(
        self,
        q_dim: int,
        node_dim: int,
        num_relations: int,
        max_hops: int = 3,
        hidden: int = 32,
        heads: int = 2,
        layers: int = 3,
    ) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden ({hidden}) must be a multiple of heads ({heads})")
        self.q_in = nn.Sequential(nn.Linear(q_dim, hidden), nn.Tanh())
        self.x_in = nn.Linear(node_dim, hidden)
        self.relation = nn.Embedding(num_relations, hidden)
        self.relation_gate = nn.Linear(hidden, hidden)
        self.hop = nn.Embedding(max_hops + 1, hidden)
        self.relevance = nn.Parameter(torch.zeros(hidden))
        self.film = nn.ModuleList(nn.Linear(hidden, 2 * hidden) for _ in range(layers))
        self.convs = nn.ModuleList(_gatv2(hidden, heads) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.readout = nn.Sequential(nn.Linear(2 * hidden + node_dim, hidden), nn.GELU(), nn.Linear(hidden, 1))

    def forward(
        self,
        x: Tensor,  # (V, F) float
        q: Tensor,  # (B, D) float
        batch: Tensor,  # (V,) long
        edge_index: Tensor,  # (2, E) long: row 0 source j, row 1 target i
        relation: Tensor,  # (E,) long
        hop: Tensor,  # (E,) long
        weight: Tensor,  # (E,) float
    ) -> tuple[Tensor, Tensor]:
        """(node logits (V,), last layer's attention averaged over heads (E,))."""
        u = self.q_in(q)  # (B, H)
        u_node = u[batch]  # (V, H)
        u_edge = u_node[edge_index[1]]  # (E, H)
        e = (
            self.relation(relation) * torch.sigmoid(self.relation_gate(u_edge))
            + self.hop(hop)
            + weight.unsqueeze(1) * self.relevance
        )  # (E, H)
        h = self.x_in(x) + u_node  # (V, H)
        alpha = x.new_zeros(edge_index.shape[1])
        for film, conv, norm in zip(self.film, self.convs, self.norms):
            gamma, beta = film(u_node).chunk(2, dim=1)  # (V, H) each
            conditioned = (1.0 + gamma) * h + beta
            message, (_, attention) = conv(conditioned, edge_index, e, return_attention_weights=True)
            h = norm(h + nn.functional.elu(message))  # (V, H)
            alpha = attention.mean(dim=1)  # (E,), kept from the last layer
        logits = self.readout(torch.cat([h, u_node, x], dim=1)).squeeze(1)  # (V,)
        return logits, alpha


def _gatv2(hidden: int, heads: int) -> GATv2Conv:
    """A GATv2 layer whose generated code leaves no file behind.

    The first GATv2Conv of a process renders its `propagate` and `edge_updater` from
    templates into `tempfile.NamedTemporaryFile(delete=False)` and imports them
    (torch_geometric.template): two files in /tmp per process, never deleted, so every
    worker start, test and benchmark run left two more (1,272 after a few days here).
    The code is imported at construction and not read again, so it is rendered into a
    private folder that is removed at once."""
    saved = tempfile.tempdir
    with tempfile.TemporaryDirectory(prefix="autoglm-pyg-") as folder:
        tempfile.tempdir = folder
        try:
            return GATv2Conv(hidden, hidden // heads, heads=heads, edge_dim=hidden, add_self_loops=False)
        finally:
            tempfile.tempdir = saved
