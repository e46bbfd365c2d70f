"""The committed checkpoint: weights, hyper-parameters, linker statistics and provenance.

One `torch.save` file of plain tensors, numbers and strings (loadable with
`weights_only=True`, so loading never runs code from the file). It carries everything the
reasoner needs besides the KB and the packaged encoder, and the fingerprints of both, so a
mismatch is reported instead of producing wrong answers silently.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "checkpoints" / "gnn.pt"
FORMAT = 1


@dataclass
class Config:
    """Architecture and decoding settings, fixed at training time."""

    max_hops: int = 3
    head_hidden: int = 256
    gnn_hidden: int = 32
    gnn_heads: int = 2
    gnn_layers: int = 3
    min_continue: float = 0.05  # expand hop t only when P(L ≥ t) ≥ this
    min_share: float = 0.05  # expand along a relation only when its share at the hop ≥ this
    max_relations: int = 3  # relations per hop at most
    threshold: float = 0.5  # answer-set score threshold (tuned on qa_val)


@dataclass
class Checkpoint:
    config: Config
    relations: list[str]  # KB relation names, in the order the weights index them
    head: dict[str, torch.Tensor]
    gnn: dict[str, torch.Tensor]
    templates: dict[str, int]  # template -> training frequency (entity linker)
    topic_names: list[str]  # entities seen as topic in training (entity linker prior)
    topic_counts: list[int]
    kb_sha256: str
    encoder: str  # encoder fingerprint the head was trained on
    template_keys: list[str] = field(default_factory=list)  # training templates, encoded …
    template_vectors: torch.Tensor | None = None  # … (T, D) float32: pre-fills the encoding cache
    data: dict[str, str] = field(default_factory=dict)  # file -> sha256 of the data trained on
    metrics: dict[str, Any] = field(default_factory=dict)
    command: str = ""

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Plain JSON types only (no numpy scalars), so `weights_only` loading accepts the file.
        tensors = ("head", "gnn", "template_vectors")
        blob = json.loads(json.dumps({k: v for k, v in asdict(self).items() if k not in tensors}, default=float))
        blob.update({k: getattr(self, k) for k in tensors})
        blob["format"] = FORMAT
        tmp = path.with_suffix(".tmp")
        torch.save(blob, tmp)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path | str = DEFAULT_PATH) -> Checkpoint:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(
                f"GNN checkpoint {path} not found: train one with `autoglm train` "
                "(python -m reasoning.gnn.train) or use AUTOGLM_REASONER=baseline"
            )
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob.pop("format", None) != FORMAT:
            raise ValueError(f"{path} is not a format-{FORMAT} GNN checkpoint: retrain with `autoglm train`")
        blob["config"] = Config(**blob["config"])
        return cls(**blob)
