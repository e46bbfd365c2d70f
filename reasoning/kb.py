"""The knowledge base in memory: entity and relation ids, and one sparse matrix per relation.

Every relation `r` gets an inverse `r_inv`, so any path (`Ginger Rogers -starred_actors_inv->
Top Hat -directed_by-> Mark Sandrich`) is followed forwards with sparse matrix products
instead of Python walks per edge. A frontier is a (questions x entities) sparse matrix; one
hop along `r` is `frontier @ kb.adjacency[r]`, and its values count the walks.

Parsing the text file costs a few hundred milliseconds; the parsed triples are cached as
`.npz` in the state folder, keyed by the file's sha256, so a second load is much faster.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from reasoning.metaqa import KB_FILE, open_text
from reasoning.npz_cache import write_npz
from schemas.settings import Settings

log = logging.getLogger(__name__)

INVERSE_SUFFIX = "_inv"
_CACHE_FORMAT = 1


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file as stored (compressed files are hashed compressed)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class KnowledgeBase:
    """Entities, relations (forward then inverse) and per-relation CSR adjacency."""

    names: list[str]
    relations: list[str]
    subjects: np.ndarray  # int32, one per stored triple (forward relations only)
    relation_ids: np.ndarray  # int32, forward relation id of each triple
    objects: np.ndarray  # int32
    source: Path | None = None
    sha256: str | None = None
    ids: dict[str, int] = field(init=False, repr=False)
    adjacency: list[sp.csr_matrix] = field(init=False, repr=False)
    degree: np.ndarray = field(init=False, repr=False)
    out_relations: sp.csr_matrix = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.ids = {name: i for i, name in enumerate(self.names)}
        n, r = len(self.names), self.num_base_relations
        self.adjacency = []
        ones = np.ones(len(self.subjects), dtype=np.float32)
        for rel in range(r):
            sel = self.relation_ids == rel
            fwd = sp.csr_matrix((ones[sel], (self.subjects[sel], self.objects[sel])), shape=(n, n))
            fwd.sum_duplicates()
            self.adjacency.append(fwd)
        self.adjacency += [a.T.tocsr() for a in self.adjacency]
        self.degree = np.bincount(self.subjects, minlength=n) + np.bincount(self.objects, minlength=n)
        # (entities x relations) with a 1 where the entity has at least one edge of the
        # relation: tells in O(1) whether a relation path can start at an entity.
        cols = [np.flatnonzero(np.diff(a.indptr)) for a in self.adjacency]
        rows = np.concatenate(cols)
        rels = np.concatenate([np.full(len(c), i, dtype=np.int32) for i, c in enumerate(cols)])
        self.out_relations = sp.csr_matrix(
            (np.ones(len(rows), dtype=bool), (rows, rels)), shape=(n, len(self.relations))
        )

    # --- loading -------------------------------------------------------------------------

    @classmethod
    def from_settings(cls, settings: Settings) -> KnowledgeBase:
        """The KB named by `AUTOGLM_KB_PATH`, or the packaged MetaQA KB; cached in the state dir."""
        return cls.load(settings.kb_path or KB_FILE, cache_dir=settings.state_dir / "kb")

    @classmethod
    def load(cls, path: Path | str = KB_FILE, cache_dir: Path | None = None) -> KnowledgeBase:
        """Load `subject|relation|object` triples (gzip or plain), through the cache if given."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"knowledge base {path} not found: set AUTOGLM_KB_PATH to a triples file")
        started = time.perf_counter()
        sha = file_sha256(path)
        cache = cache_dir / f"{sha}.v{_CACHE_FORMAT}.npz" if cache_dir else None
        if cache is not None and cache.exists():
            kb = cls._read_cache(cache, path, sha)
        else:
            kb = cls.parse(path)
            kb.sha256 = sha
            if cache is not None:
                kb._write_cache(cache)
        log.info("kb loaded", extra={"path": str(path), "seconds": time.perf_counter() - started})
        return kb

    @classmethod
    def parse(cls, path: Path) -> KnowledgeBase:
        """Parse a triples file; entity and relation ids follow sorted name order."""
        rows: list[list[str]] = []
        for number, line in enumerate(open_text(path), start=1):
            parts = line.split("|")
            if len(parts) != 3:
                raise ValueError(f"{path}:{number}: expected `subject|relation|object`, got {line!r}")
            rows.append(parts)
        subjects, rels, objects = (list(column) for column in zip(*rows)) if rows else ([], [], [])
        names = sorted(set(subjects).union(objects))
        base = sorted(set(rels))
        ids = {name: i for i, name in enumerate(names)}
        rel_ids = {name: i for i, name in enumerate(base)}
        coded = np.empty((len(rows), 3), dtype=np.int32)
        coded[:, 0] = [ids[s] for s in subjects]
        coded[:, 1] = [rel_ids[r] for r in rels]
        coded[:, 2] = [ids[o] for o in objects]
        coded = np.unique(coded, axis=0)  # duplicate lines are one fact
        return cls(
            names=names,
            relations=base + [r + INVERSE_SUFFIX for r in base],
            subjects=np.ascontiguousarray(coded[:, 0]),
            relation_ids=np.ascontiguousarray(coded[:, 1]),
            objects=np.ascontiguousarray(coded[:, 2]),
            source=path,
        )

    def _write_cache(self, cache: Path) -> None:
        blob = "\n".join(self.names).encode("utf-8")
        rel_blob = "\n".join(self.relations[: self.num_base_relations]).encode("utf-8")
        write_npz(
            cache,
            names=np.frombuffer(blob, dtype=np.uint8),
            relations=np.frombuffer(rel_blob, dtype=np.uint8),
            subjects=self.subjects,
            relation_ids=self.relation_ids,
            objects=self.objects,
        )

    @classmethod
    def _read_cache(cls, cache: Path, path: Path, sha: str) -> KnowledgeBase:
        with np.load(cache) as data:
            names = data["names"].tobytes().decode("utf-8").split("\n")
            base = data["relations"].tobytes().decode("utf-8").split("\n")
            return cls(
                names=names,
                relations=base + [r + INVERSE_SUFFIX for r in base],
                subjects=data["subjects"],
                relation_ids=data["relation_ids"],
                objects=data["objects"],
                source=path,
                sha256=sha,
            )

    # --- lookups -------------------------------------------------------------------------

    @property
    def num_entities(self) -> int:
        return len(self.names)

    @property
    def num_relations(self) -> int:
        """Forward and inverse relations together."""
        return len(self.relations)

    @property
    def num_base_relations(self) -> int:
        return len(self.relations) // 2

    def entity_id(self, name: str) -> int | None:
        return self.ids.get(name)

    def relation_id(self, name: str) -> int:
        try:
            return self.relations.index(name)
        except ValueError:
            raise KeyError(f"unknown relation {name!r}; known: {', '.join(self.relations)}") from None

    def inverse(self, relation: int) -> int:
        """The id of the reverse direction of `relation`."""
        r = self.num_base_relations
        return relation + r if relation < r else relation - r

    def neighbors(self, entity: int, relation: int) -> np.ndarray:
        """Entity ids reached from `entity` by one `relation` edge."""
        a = self.adjacency[relation]
        return a.indices[a.indptr[entity] : a.indptr[entity + 1]]

    def relations_of(self, entity: int) -> np.ndarray:
        """Relation ids (forward or inverse) that leave `entity`."""
        m = self.out_relations
        return m.indices[m.indptr[entity] : m.indptr[entity + 1]]

    def edges(self, with_inverse: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(source, relation, target) arrays, inverse edges appended: a GNN's edge list."""
        src, rel, dst = self.subjects, self.relation_ids, self.objects
        if not with_inverse:
            return src, rel, dst
        return (
            np.concatenate([src, dst]),
            np.concatenate([rel, rel + self.num_base_relations]),
            np.concatenate([dst, src]),
        )

    def one_hot(self, entities: np.ndarray) -> sp.csr_matrix:
        """A (len(entities) x N) frontier with one entity per row: where walks start."""
        k = len(entities)
        return sp.csr_matrix(
            (np.ones(k, dtype=np.float32), (np.arange(k), np.asarray(entities))),
            shape=(k, self.num_entities),
        )
