"""`GnnReasoner`: the worker's default reasoner, one batched pass per Kafka batch.

For a batch of questions (stage names are the keys of `timings`):

1. `link`      — topic entity of each question (`reasoning.linking`: brackets, exact
                 Aho-Corasick matches ranked by known templates, fuzzy fallback);
2. `encode`    — the entity-masked question through the checkpoint's fine-tuned MiniLM
                 layers (`reasoning.encoder.TunedStack`), via an LRU cache keyed by the
                 masked text (`encode_cache`);
3. `relations` — per-hop relation distributions (`relation_head`), which also pick among
                 same-name entities the one that has the first hop's relations;
4. `subgraph`  — layered, relevance-weighted subgraphs with a node budget (`subgraph`),
                 through an optional LRU of per-question pieces (`subgraph_cache`);
5. `gnn`       — one forward pass of the question-conditioned GATv2 over their disjoint union;
6. `decode`    — answer sets, confidences and attention-backtracked paths (`decoder`).

`estimate_costs` runs stages 1-4 (the exact subgraph size is the cost) and keeps them for
the `answer_batch` calls that follow on the same questions, which then run only 5-6.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from reasoning.device import autocast, configure_threads
from reasoning.gnn.checkpoint import DEFAULT_PATH, FORMAT, Checkpoint
from reasoning.gnn.decoder import Decoded, decode
from reasoning.gnn.encode_cache import CachedEncoder, TextEncoder
from reasoning.gnn.model import QuestionGAT
from reasoning.gnn.relation_head import RelationHead, hop_choices, length_distribution
from reasoning.gnn.subgraph import HopChoices, RelationIndex, Subgraphs
from reasoning.gnn.subgraph_cache import Piece, SubgraphCache, assemble, split
from reasoning.gnn.tensors import node_dim, to_tensors
from reasoning.kb import KnowledgeBase
from reasoning.linking import EntityLinker, Link
from reasoning.reasoner import Reasoned
from reasoning.sentences import sentence
from schemas.question import Question
from schemas.settings import Settings

log = logging.getLogger(__name__)

SINGLE_THREAD_BELOW = 100_000  # graph nodes under which the GNN runs on one CPU thread


@dataclass
class Graphs:
    """The linked questions of a batch up to the GNN's input."""

    q: np.ndarray  # (L, D) question vectors
    lengths: np.ndarray  # (L, T + 1) path-length distribution
    topics: np.ndarray  # (L,) topic entity ids
    sub: Subgraphs  # their disjoint union

    @cached_property
    def pieces(self) -> list[Piece]:
        return split(self.sub)


@dataclass
class Prepared:
    """A batch after link → encode → relations → subgraph, before the GNN."""

    links: list[Link]  # one per question
    linked: list[int]  # positions of the linked questions, in `graphs` order
    graphs: Graphs | None  # None when nothing was linked

    def costs(self) -> np.ndarray:
        """Subgraph nodes + edges per question; 0 for unlinked ones (they never reach the GNN)."""
        out = np.zeros(len(self.links))
        if self.graphs is not None:
            sub = self.graphs.sub
            edges = np.bincount(sub.question[sub.dst], minlength=sub.num_questions)
            out[self.linked] = sub.nodes_per_question() + edges
        return out

    def select(self, rows: Sequence[int]) -> Prepared:
        """Questions `rows` of this batch (any order, repeats allowed) as a batch of their own."""
        if self.graphs is None:
            return Prepared([self.links[r] for r in rows], [], None)
        where = np.full(len(self.links), -1, dtype=np.int64)
        where[self.linked] = np.arange(len(self.linked))
        picked = where[np.asarray(rows, dtype=np.int64)]
        linked = np.flatnonzero(picked >= 0)
        picked = picked[linked]
        g = self.graphs
        graphs = Graphs(g.q[picked], g.lengths[picked], g.topics[picked], assemble([g.pieces[j] for j in picked]))
        return Prepared([self.links[r] for r in rows], linked.tolist(), graphs if len(picked) else None)


@dataclass
class _Memo:
    """What `estimate_costs` prepared, until `answer_batch` has used every question of it."""

    prepared: Prepared
    rows: dict[tuple, int]  # _memo_key(question) → its position in `prepared`
    unused: set[int]


def _memo_key(question: Question) -> tuple:
    return (question.question_id, question.text, question.topic_entity)


class GnnReasoner:
    """Link → encode → relations → subgraph → GATv2 → decode (see the module docstring)."""

    name = "gnn"

    def __init__(
        self,
        kb: KnowledgeBase,
        encoder: TextEncoder,
        checkpoint: Checkpoint,
        device: torch.device | None = None,
        max_nodes: int = 2000,
        max_answers: int = 100,
        encode_cache: int = 0,  # caches are off unless sized: `load` sizes them from the settings
        subgraph_cache: int = 0,
        version: str | None = None,
    ) -> None:
        if list(checkpoint.relations) != list(kb.relations):
            raise ValueError(
                "the GNN checkpoint was trained on relations "
                f"{checkpoint.relations} but the KB has {kb.relations}: retrain with `autoglm train`"
            )
        if checkpoint.kb_sha256 and kb.sha256 and checkpoint.kb_sha256 != kb.sha256:
            log.warning("KB differs from the one the GNN was trained on; answers may be worse")
        self.kb = kb
        self.config = cfg = checkpoint.config
        self.device = device or torch.device("cpu")
        self.max_nodes = max_nodes
        self.max_answers = max_answers
        self.version = version or f"gnn-{FORMAT}"
        self.index = RelationIndex(kb)
        self._names = np.array(kb.names, dtype=object)
        self._relation_names = np.array(kb.relations, dtype=object)
        prior = {
            i: n
            for name, n in zip(checkpoint.topic_names, checkpoint.topic_counts)
            if (i := kb.entity_id(name)) is not None
        }
        self.linker = EntityLinker(kb, checkpoint.templates, prior)
        self.encoder = CachedEncoder(encoder, encode_cache)
        self.subgraph_cache = SubgraphCache(subgraph_cache)
        self._memo: _Memo | None = None  # one batch; the worker's single reasoner thread uses it
        self._prefill = (checkpoint.template_keys, checkpoint.template_vectors)
        if getattr(encoder, "fingerprint", checkpoint.encoder) == checkpoint.encoder:
            self.prewarm()
        self.head = RelationHead(encoder.dim, kb.num_relations, cfg.max_hops, cfg.head_hidden)
        self.head.load_state_dict(checkpoint.head)
        self.gnn = QuestionGAT(
            encoder.dim,
            node_dim(cfg.max_hops),
            kb.num_relations,
            cfg.max_hops,
            cfg.gnn_hidden,
            cfg.gnn_heads,
            cfg.gnn_layers,
        )
        self.gnn.load_state_dict(checkpoint.gnn)
        self.head.to(self.device).eval()
        self.gnn.to(self.device).eval()
        self.timings: dict[str, float] = defaultdict(float)  # seconds per stage, summed over calls
        self.questions_answered = 0

    @classmethod
    def load(cls, settings: Settings) -> GnnReasoner:
        """KB, packaged encoder and the committed checkpoint, on the settings' device."""
        from reasoning.encoder import LazyQuestionEncoder

        configure_threads(settings)
        path = Path(settings.gnn_checkpoint or DEFAULT_PATH)
        checkpoint = Checkpoint.load(path)
        kb = KnowledgeBase.from_settings(settings)
        # The checkpoint pre-fills the encoding cache with the training templates' vectors, so
        # the model (and the slow transformers import) loads in the background meanwhile.
        encoder = LazyQuestionEncoder(settings, checkpoint.tuned_encoder())
        encoder.start_background_load()
        if encoder.fingerprint != checkpoint.encoder:
            log.warning("encoder %s differs from the checkpoint's %s", encoder.fingerprint, checkpoint.encoder)
        reasoner = cls(
            kb,
            encoder,
            checkpoint,
            device=encoder.device,
            max_nodes=settings.max_subgraph_nodes,
            max_answers=settings.max_answers,
            encode_cache=settings.encode_cache_size,
            subgraph_cache=settings.subgraph_cache_size,
            version=f"gnn-{FORMAT}.{_short_sha(path)}",
        )
        # The KB and the linker are ~550,000 long-lived Python objects: frozen, the cyclic
        # garbage collector stops walking them in every full collection, which otherwise
        # stalled one batch in ten for ~0.3 s (bench-reasoner, 2-core CPU). Unfrozen at exit,
        # so that shutdown still frees them (extension modules report what it does not).
        gc.freeze()
        atexit.register(gc.unfreeze)
        return reasoner

    def wait_loaded(self) -> None:
        """Block until the encoder that loads in the background is in memory."""
        getattr(self.encoder.encoder, "loaded", lambda: None)()

    def prewarm(self) -> int:
        """Fill the encoding cache with the training templates' vectors; returns how many."""
        keys, vectors = self._prefill
        if vectors is None:
            return 0
        self.encoder.prefill(keys, vectors.float().numpy())
        return min(len(keys), self.encoder.capacity)

    # --- the interface -------------------------------------------------------------------

    def answer_batch(self, questions: Sequence[Question]) -> list[Reasoned]:
        """Answer every question of the batch, in order, in one pass (reusing what
        `estimate_costs` prepared for these questions, when it was called first)."""
        started = time.perf_counter()
        prepared = self._recall(questions)
        if prepared is None:
            prepared = self.prepare(questions)
        results = self.finish(prepared)
        self.timings["total"] += time.perf_counter() - started
        self.questions_answered += len(questions)
        return results

    def estimate_costs(self, questions: Sequence[Question]) -> list[float]:
        """Subgraph nodes + edges per question (0 when no entity is linked), for splitting a
        batch under the worker's `max_batch_cost`.

        Exact, and not paid twice: the estimate is the real link → subgraph work, which the
        next `answer_batch` calls on these questions reuse (whole batch or any chunks of it).
        Those stages are about a third of a warm batch; a degree-based guess would still need
        link → relations (the predicted hops), i.e. all but the ~2 ms `expand`.
        """
        started = time.perf_counter()
        prepared = self.prepare(questions)
        self._memo = _Memo(prepared, {_memo_key(q): i for i, q in enumerate(questions)}, set(range(len(questions))))
        self.timings["total"] += time.perf_counter() - started
        return prepared.costs().tolist()

    @property
    def holds_estimate(self) -> bool:
        """True while questions prepared by `estimate_costs` wait for their `answer_batch`."""
        return self._memo is not None

    def cache_stats(self) -> dict[str, dict[str, int]]:
        """Hits, misses, size and capacity of the encoding and subgraph caches."""
        encode = self.encoder
        return {
            "encode": {"hits": encode.hits, "misses": encode.misses, "size": len(encode), "capacity": encode.capacity},
            "subgraph": self.subgraph_cache.stats(),
        }

    # --- stages --------------------------------------------------------------------------

    def prepare(self, questions: Sequence[Question]) -> Prepared:
        """Link → encode → relations → subgraph: everything before the GNN."""
        with self._stage("link"):
            links = self.linker.link_batch([q.text for q in questions], [q.topic_entity for q in questions])
        linked = [i for i, link in enumerate(links) if link.found]
        if not linked:
            return Prepared(links, [], None)
        with self._stage("encode"):
            q = self.encoder.encode([links[i].template or "" for i in linked])
        with self._stage("relations"), self._graph_threads(len(linked)):
            probs, lengths = self.relations(q)
            choices = hop_choices(probs, self.config.min_continue, self.config.min_share, self.config.max_relations)
            topics = self.pick_topics([links[i] for i in linked], choices[0])
        with self._stage("subgraph"):
            sub = self.subgraph_cache.expand(self.index, topics, choices, self.max_nodes, self.config.max_relations)
        return Prepared(links, linked, Graphs(q, lengths, topics, sub))

    def finish(self, prepared: Prepared) -> list[Reasoned]:
        """GNN → decode for the linked questions; the others are `no_entity`."""
        links, graphs = prepared.links, prepared.graphs
        results = [
            Reasoned(status="no_entity", reason=link.reason or "no KB entity found in the question") for link in links
        ]
        if graphs is None:
            return results
        sub = graphs.sub
        with self._stage("gnn"), self._graph_threads(sub.num_nodes):
            scores, attention = self.score(sub, graphs.q, graphs.lengths)
        with self._stage("decode"):
            decoded = decode(sub, scores, attention, self.config.threshold, self.max_answers)
            for j, (i, d) in enumerate(zip(prepared.linked, decoded)):
                results[i] = self._reasoned(links[i], d, int(graphs.topics[j]), bool(sub.truncated[j]))
        return results

    @torch.inference_mode()
    def relations(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, T, R + 1) per-hop probabilities and (B, T + 1) path-length distribution."""
        probs = torch.softmax(self.head(torch.from_numpy(q).to(self.device)).float(), dim=-1)
        return probs.cpu().numpy(), length_distribution(probs).cpu().numpy()

    @torch.inference_mode()
    def score(self, sub: Subgraphs, q: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(V,) answer probability per node and (E,) last-layer attention per edge."""
        tensors = to_tensors(sub, q, lengths, self.config.max_hops, self.device)
        with autocast(self.device):
            logits, attention = self.gnn(*tensors.inputs())
        return torch.sigmoid(logits.float()).cpu().numpy(), attention.float().cpu().numpy()

    def pick_topics(self, links: Sequence[Link], first_hop: HopChoices) -> np.ndarray:
        """Among same-name entities, the first that has any relation the first hop follows."""
        wanted: dict[int, set[int]] = defaultdict(set)
        for b, r in zip(first_hop.question.tolist(), first_hop.relation.tolist()):
            wanted[b].add(r)
        topics = np.empty(len(links), dtype=np.int64)
        for b, link in enumerate(links):
            topics[b] = link.entity
            if len(link.candidates) > 1:
                for candidate in link.candidates:
                    if wanted[b].intersection(self.kb.relations_of(candidate).tolist()):
                        topics[b] = candidate
                        break
        return topics

    def _recall(self, questions: Sequence[Question]) -> Prepared | None:
        """These questions as `estimate_costs` prepared them, or None if it did not."""
        memo = self._memo
        if memo is None:
            return None
        rows = [memo.rows.get(_memo_key(q)) for q in questions]
        if any(row is None for row in rows):
            self._memo = None  # another batch: the estimated one is not coming back
            return None
        memo.unused.difference_update(rows)
        if not memo.unused:
            self._memo = None
        if rows == list(range(len(memo.prepared.links))):
            return memo.prepared
        return memo.prepared.select(rows)  # type: ignore[arg-type]

    # --- output --------------------------------------------------------------------------

    def _reasoned(self, link: Link, decoded: Decoded, topic_id: int, truncated: bool) -> Reasoned:
        topic = self.kb.names[topic_id]
        if len(decoded.entities) == 0:
            return Reasoned(
                status="ok",
                topic_entity=topic,
                reason=f"nothing in the knowledge base along the predicted relations from {topic!r}",
            )
        answers = list(zip(self._names[decoded.entities].tolist(), decoded.scores.tolist()))
        paths = self._path_names(decoded)
        confidence = float(np.clip(decoded.scores[0] * link.score, 0.0, 1.0))
        text = sentence(topic, paths[0][1::2], [a for a, _ in answers])
        if truncated:
            text += " (subgraph cut at the node budget)"
        return Reasoned(
            status="ok", answers=answers, paths=paths, topic_entity=topic, confidence=confidence, sentence=text
        )

    def _path_names(self, decoded: Decoded) -> list[list[str]]:
        """Walks of ids → [entity, relation, entity, …] names, one object-array lookup per batch."""
        walks = np.maximum(decoded.walks, 0)  # −1 padding is sliced off below
        named = np.empty(walks.shape, dtype=object)
        named[:, 0::2] = self._names[walks[:, 0::2]]
        named[:, 1::2] = self._relation_names[walks[:, 1::2]]
        width = walks.shape[1]
        return [named[i, width - 1 - 2 * t :].tolist() for i, t in enumerate(decoded.depth.tolist())]

    @contextlib.contextmanager
    def _graph_threads(self, size: int) -> Iterator[None]:
        """One CPU thread for the head and the GNN on batch-sized graphs.

        Their ops are small (a batch of 100 questions is ~2,000 nodes): more threads only
        add synchronisation, and on a busy 2-core machine a second thread that has to wait
        for a core makes every op wait (measured: 18 ms → 320 ms per forward). The encoder
        keeps the configured thread count.
        """
        before = torch.get_num_threads()
        wanted = 1 if self.device.type == "cpu" and size < SINGLE_THREAD_BELOW else before
        if wanted == before:
            yield
            return
        torch.set_num_threads(wanted)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    @contextlib.contextmanager
    def _stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] += time.perf_counter() - started


def _short_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:8]
