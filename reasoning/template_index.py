"""What training teaches the baseline: question templates, their relation paths, their vectors.

Every `qa_train` question is masked (`what films did NE act in`); questions with the same
mask share a template. For each template the relation paths that explain its questions are
mined from the KB (`reasoning.path_mining`), and the template is encoded once. At question
time the nearest templates vote for a relation path.

Building reads ~35k questions, mines paths and encodes a few hundred templates; the result
is cached in the state folder under a key made of the KB's, the training files' and the
encoder's fingerprints, so it is rebuilt exactly when one of them changes.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reasoning.encoder import QuestionEncoder
from reasoning.kb import KnowledgeBase, file_sha256
from reasoning.linking import template_key
from reasoning.metaqa import HOPS, bracket_span, qa_file, read_qa
from reasoning.npz_cache import write_npz
from reasoning.path_mining import MinedQuestion, mine

log = logging.getLogger(__name__)

INDEX_VERSION = 3  # bump when mining or keys change: old caches are then ignored
_SEP = "\n"


def default_train_files() -> list[Path]:
    """The packaged 1-, 2- and 3-hop `qa_train` files."""
    return [qa_file(hop, "train") for hop in HOPS]


@dataclass
class TemplateIndex:
    """Templates (rows) with unit vectors, and per template a distribution over paths."""

    keys: list[str]  # template_key of each row
    vectors: np.ndarray  # (T, dim) float32, unit rows
    paths: list[tuple[int, ...]]  # distinct relation paths (KB relation ids)
    votes: np.ndarray  # (T, P) float32, each row sums to 1 (or 0 if nothing was mined)
    counts: np.ndarray  # (T,) training questions per template
    topic_ids: np.ndarray  # entity ids seen as topic entity in training
    topic_counts: np.ndarray  # how often each
    _rows: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rows = {key: i for i, key in enumerate(self.keys)}

    @property
    def template_counts(self) -> dict[str, int]:
        return dict(zip(self.keys, self.counts.tolist()))

    @property
    def topic_prior(self) -> dict[int, int]:
        return dict(zip(self.topic_ids.tolist(), self.topic_counts.tolist()))

    def row_of(self, key: str) -> int | None:
        """The row of an exact template, if training had it."""
        return self._rows.get(key)

    # --- building ------------------------------------------------------------------------

    @classmethod
    def build(cls, kb: KnowledgeBase, encoder: QuestionEncoder, train_files: Sequence[Path]) -> TemplateIndex:
        """Mine and encode from scratch (tens of seconds on a laptop)."""
        started = time.perf_counter()
        mined: list[MinedQuestion] = []
        counts: Counter[str] = Counter()
        topics: Counter[int] = Counter()
        for path in train_files:
            for pair in read_qa(path):
                marked = bracket_span(pair.question)
                topic = kb.entity_id(marked[2]) if marked else None
                if marked is None or topic is None:
                    continue  # unusable for training: no topic entity in this KB
                key = template_key(pair.question, (marked[0], marked[1]))
                answers = tuple(i for a in pair.answers if (i := kb.entity_id(a)) is not None)
                mined.append(MinedQuestion(key, topic, answers, len(pair.answers)))
                counts[key] += 1
                topics[topic] += 1
        if not mined:
            raise ValueError("no training question has a bracketed topic entity found in the KB")
        by_template = mine(kb, mined)
        keys = sorted(counts)
        paths = sorted({p for c in by_template.values() for p in c})
        column = {p: j for j, p in enumerate(paths)}
        votes = np.zeros((len(keys), len(paths)), dtype=np.float32)
        for i, key in enumerate(keys):
            total = sum(by_template[key].values())
            for path, n in by_template[key].items():
                votes[i, column[path]] = n / total
        index = cls(
            keys=keys,
            vectors=encoder.encode(keys),
            paths=paths,
            votes=votes,
            counts=np.array([counts[k] for k in keys], dtype=np.int64),
            topic_ids=np.array(list(topics), dtype=np.int64),
            topic_counts=np.array(list(topics.values()), dtype=np.int64),
        )
        log.info("template index built", extra={"templates": len(keys), "seconds": time.perf_counter() - started})
        return index

    @classmethod
    def load_or_build(
        cls,
        kb: KnowledgeBase,
        encoder: QuestionEncoder,
        cache_dir: Path | None,
        train_files: Sequence[Path] | None = None,
    ) -> TemplateIndex:
        """The cached index when its fingerprints match, else a fresh build (then cached)."""
        train_files = list(train_files or default_train_files())
        cache = cache_dir / f"templates-{cache_key(kb, encoder, train_files)}.npz" if cache_dir else None
        if cache is not None and cache.exists():
            return cls.read(cache, kb)
        index = cls.build(kb, encoder, train_files)
        if cache is not None:
            index.write(cache, kb)
        return index

    # --- cache ---------------------------------------------------------------------------

    def write(self, cache: Path, kb: KnowledgeBase) -> None:
        path_names = ["\t".join(kb.relations[r] for r in p) for p in self.paths]
        write_npz(
            cache,
            keys=_blob(self.keys),
            paths=_blob(path_names),
            vectors=self.vectors,
            votes=self.votes,
            counts=self.counts,
            topic_ids=self.topic_ids,
            topic_counts=self.topic_counts,
        )

    @classmethod
    def read(cls, cache: Path, kb: KnowledgeBase) -> TemplateIndex:
        with np.load(cache) as data:
            path_names = _unblob(data["paths"])
            return cls(
                keys=_unblob(data["keys"]),
                vectors=data["vectors"],
                paths=[tuple(kb.relation_id(r) for r in names.split("\t")) for names in path_names],
                votes=data["votes"],
                counts=data["counts"],
                topic_ids=data["topic_ids"],
                topic_counts=data["topic_counts"],
            )


def cache_key(kb: KnowledgeBase, encoder: QuestionEncoder, train_files: Sequence[Path]) -> str:
    """Fingerprint of everything the index is derived from."""
    parts = [f"v{INDEX_VERSION}", kb.sha256 or "", encoder.fingerprint]
    parts += [file_sha256(Path(f)) for f in train_files]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


def _blob(items: Sequence[str]) -> np.ndarray:
    return np.frombuffer(_SEP.join(items).encode("utf-8"), dtype=np.uint8)


def _unblob(data: np.ndarray) -> list[str]:
    text = data.tobytes().decode("utf-8")
    return text.split(_SEP) if text else []
