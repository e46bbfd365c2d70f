"""`GnnReasoner`: the worker's default reasoner, one batched pass per Kafka batch.

For a batch of questions (stage names are the keys of `timings`):

1. `link`      — topic entity of each question (`workers.linking`: brackets, exact
                 Aho-Corasick matches ranked by known templates, fuzzy fallback);
2. `encode`    — the entity-masked question through frozen all-MiniLM-L6-v2, via an LRU
                 cache keyed by the masked text (`encode_cache`);
3. `relations` — per-hop relation distributions (`relation_head`), which also pick among
                 same-name entities the one that has the first hop's relations;
4. `subgraph`  — layered, relevance-weighted subgraphs with a node budget (`subgraph`);
5. `gnn`       — one forward pass of the question-conditioned GATv2 over their disjoint union;
6. `decode`    — answer sets, confidences and attention-backtracked paths (`decoder`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections import defaultdict
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from schemas.question import Question
from schemas.settings import Settings
from workers.device import autocast, configure_threads
from workers.gnn.checkpoint import DEFAULT_PATH, FORMAT, Checkpoint
from workers.gnn.decoder import Decoded, decode
from workers.gnn.encode_cache import CachedEncoder, TextEncoder
from workers.gnn.model import QuestionGAT
from workers.gnn.relation_head import RelationHead, hop_choices, length_distribution
from workers.gnn.subgraph import HopChoices, RelationIndex, Subgraphs, expand
from workers.gnn.tensors import node_dim, to_tensors
from workers.kb import KnowledgeBase
from workers.linking import EntityLinker, Link
from workers.reasoner import Reasoned
from workers.sentences import sentence

log = logging.getLogger(__name__)

DEFAULT_ENCODE_CACHE = 50_000  # masked questions (~1.5 KB each): about 75 MB at most
SINGLE_THREAD_BELOW = 100_000  # graph nodes under which the GNN runs on one CPU thread


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
        encode_cache: int = DEFAULT_ENCODE_CACHE,
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
        from workers.encoder import LazyQuestionEncoder

        configure_threads(settings)
        path = Path(getattr(settings, "gnn_checkpoint", None) or DEFAULT_PATH)
        checkpoint = Checkpoint.load(path)
        kb = KnowledgeBase.from_settings(settings)
        # The checkpoint pre-fills the encoding cache with the training templates' vectors, so
        # the model (and the slow transformers import) loads in the background meanwhile.
        encoder = LazyQuestionEncoder(settings)
        encoder.start_background_load()
        if encoder.fingerprint != checkpoint.encoder:
            log.warning("encoder %s differs from the checkpoint's %s", encoder.fingerprint, checkpoint.encoder)
        return cls(
            kb,
            encoder,
            checkpoint,
            device=encoder.device,
            max_nodes=settings.max_subgraph_nodes,
            max_answers=settings.max_answers,
            encode_cache=int(getattr(settings, "encode_cache_size", DEFAULT_ENCODE_CACHE)),
            version=f"gnn-{FORMAT}.{_short_sha(path)}",
        )

    def prewarm(self) -> int:
        """Fill the encoding cache with the training templates' vectors; returns how many."""
        keys, vectors = self._prefill
        if vectors is None:
            return 0
        self.encoder.prefill(keys, vectors.float().numpy())
        return min(len(keys), self.encoder.capacity)

    # --- the interface -------------------------------------------------------------------

    def answer_batch(self, questions: Sequence[Question]) -> list[Reasoned]:
        """Answer every question of the batch, in order, in one pass."""
        started = time.perf_counter()
        with self._stage("link"):
            links = self.linker.link_batch([q.text for q in questions], [q.topic_entity for q in questions])
        results = [
            Reasoned(status="no_entity", reason=link.reason or "no KB entity found in the question") for link in links
        ]
        linked = [i for i, link in enumerate(links) if link.found]
        if linked:
            for i, reasoned in zip(linked, self.reason([links[i] for i in linked])):
                results[i] = reasoned
        self.timings["total"] += time.perf_counter() - started
        self.questions_answered += len(questions)
        return results

    # --- stages --------------------------------------------------------------------------

    def reason(self, links: Sequence[Link]) -> list[Reasoned]:
        """Everything after linking, for linked questions."""
        with self._stage("encode"):
            q = self.encoder.encode([link.template or "" for link in links])
        with self._stage("relations"), self._graph_threads(len(links)):
            probs, lengths = self.relations(q)
            choices = hop_choices(probs, self.config.min_continue, self.config.min_share, self.config.max_relations)
            topics = self.pick_topics(links, choices[0])
        with self._stage("subgraph"):
            sub = expand(self.index, topics, choices, self.max_nodes)
        with self._stage("gnn"), self._graph_threads(sub.num_nodes):
            scores, attention = self.score(sub, q, lengths)
        with self._stage("decode"):
            decoded = decode(sub, scores, attention, self.config.threshold, self.max_answers)
            return [
                self._reasoned(link, d, int(topics[i]), bool(sub.truncated[i]))
                for i, (link, d) in enumerate(zip(links, decoded))
            ]

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
