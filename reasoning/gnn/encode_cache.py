"""Question vectors through a bounded LRU cache keyed by the entity-masked question.

The encoder sees the question with its entity replaced by `NE` (`what films did NE act in`),
so every question of the same shape, whatever its entity, has the same vector. Real traffic
repeats shapes far more than questions when it is templated: a warm cache turns the encoder
into a dictionary lookup. People's free text rarely repeats a phrasing, so the encoder
itself has to be fast (`reasoning.encoder.TunedStack`: two layers, bf16). Misses of a batch
are encoded together in one call. The reasoner pre-fills it with the training templates' vectors stored in the checkpoint, so
a freshly started worker is already warm for every question shape seen in training.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol

import numpy as np


class TextEncoder(Protocol):
    dim: int

    def encode(self, texts: Sequence[str], batch_size: int | None = ...) -> np.ndarray: ...


class CachedEncoder:
    """`encode(keys)` with at most `capacity` vectors kept, least recently used evicted."""

    def __init__(self, encoder: TextEncoder, capacity: int) -> None:
        if capacity < 0:
            raise ValueError("encode cache capacity must be ≥ 0 (0 disables the cache)")
        self.encoder = encoder
        self.capacity = capacity
        self.dim = encoder.dim
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._vectors)

    def clear(self) -> None:
        self._vectors.clear()

    def prefill(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Store known vectors (e.g. the training templates') without counting hits or misses."""
        for key, vector in zip(keys, vectors):
            self._remember(key, np.asarray(vector, dtype=np.float32))

    def encode(self, keys: Sequence[str]) -> np.ndarray:
        """(len(keys), dim) float32 unit vectors."""
        out = np.empty((len(keys), self.dim), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            vector = self._vectors.get(key)
            if vector is None:
                missing.setdefault(key, []).append(i)
            else:
                self._vectors.move_to_end(key)
                out[i] = vector
        self.hits += len(keys) - sum(len(rows) for rows in missing.values())
        self.misses += sum(len(rows) for rows in missing.values())
        if missing:
            texts = list(missing)
            fresh = self.encoder.encode(texts)
            for text, vector in zip(texts, fresh):
                out[missing[text]] = vector
                self._remember(text, vector)
        return out

    def _remember(self, key: str, vector: np.ndarray) -> None:
        if self.capacity == 0:
            return
        self._vectors[key] = vector
        if len(self._vectors) > self.capacity:
            self._vectors.popitem(last=False)
