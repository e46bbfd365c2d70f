"""The baseline reasoner: link, mask, vote for a relation path among training templates, walk it.

For a batch of questions:

1. link the topic entity of each (`reasoning.linking`) and mask it: `what films did NE act in`;
2. encode the masked questions in one batched call (a template seen in training reuses its
   stored vector: same text, same vector) and let the `TOP_K` nearest training templates
   vote, weighted by `exp((cos - best) / TEMPERATURE)`, over relation paths;
3. walk the winning path from the topic entity in the KB, all questions sharing a path in
   one chain of sparse products (`reasoning.paths`); when it reaches nothing, the next entity
   with the same name, then the next path, is tried;
4. every entity reached (the topic excluded) is an answer, ranked by how many walks reach
   it, each explained by one backtracked walk.

No neural reasoning over the graph: the learned GNN reasoner has to beat this.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from reasoning.encoder import LazyQuestionEncoder, QuestionEncoder
from reasoning.kb import KnowledgeBase
from reasoning.linking import EntityLinker, Link
from reasoning.paths import backtrack, follow
from reasoning.reasoner import Reasoned
from reasoning.sentences import sentence
from reasoning.template_index import INDEX_VERSION, TemplateIndex
from schemas.question import Question
from schemas.settings import Settings

T = TypeVar("T")

TOP_K = 5  # training templates that vote
TEMPERATURE = 0.02  # cosine gap that costs a factor e in vote weight: near-ties share, exact wins
MIN_SHARE = 0.05  # paths with less of the vote are not tried
MAX_PATHS = 3  # paths tried per question before giving up
MAX_ENTITIES = 5  # same-name entities tried per path


@dataclass(frozen=True)
class _Walked:
    """The outcome of walking one question's chosen path."""

    entity: int
    path_index: int  # into TemplateIndex.paths
    path: tuple[int, ...]
    ends: np.ndarray  # answer entity ids, best first
    counts: np.ndarray  # walks reaching each
    walks: np.ndarray  # (len(ends), len(path) + 1) entity ids


class BaselineReasoner:
    """Template nearest-neighbour relation paths over a sparse KB (see module docstring)."""

    name = "baseline"
    version = f"baseline-1.{INDEX_VERSION}"

    def __init__(
        self,
        kb: KnowledgeBase,
        encoder: QuestionEncoder,
        index: TemplateIndex,
        max_answers: int = 100,
        reuse_template_vectors: bool = True,
    ) -> None:
        self.kb = kb
        self.encoder = encoder
        self.index = index
        self.linker = EntityLinker(kb, index.template_counts, index.topic_prior)
        self.max_answers = max_answers
        self._first_relations = np.array([p[0] for p in index.paths], dtype=np.int64)
        self.reuse_template_vectors = reuse_template_vectors
        self.timings: dict[str, float] = defaultdict(float)  # seconds per stage, summed over calls
        self.questions_answered = 0

    @classmethod
    def load(cls, settings: Settings) -> BaselineReasoner:
        """KB, encoder and template index from the settings (index cached in the state dir)."""
        kb = KnowledgeBase.from_settings(settings)
        encoder = LazyQuestionEncoder(settings)  # cached template vectors need no model
        index = TemplateIndex.load_or_build(kb, encoder, settings.state_dir / "baseline")  # type: ignore[arg-type]
        encoder.start_background_load()  # ready for unseen templates soon after start
        return cls(kb, encoder, index, max_answers=settings.max_answers)  # type: ignore[arg-type]

    def wait_loaded(self) -> None:
        """Block until the encoder that loads in the background is in memory."""
        getattr(self.encoder, "loaded", lambda: None)()

    # --- the interface -------------------------------------------------------------------

    def answer_batch(self, questions: Sequence[Question]) -> list[Reasoned]:
        """Answer every question of the batch, in order."""
        started = time.perf_counter()
        links = self._timed(
            "link", self.linker.link_batch, [q.text for q in questions], [q.topic_entity for q in questions]
        )
        linked = [i for i, link in enumerate(links) if link.found]
        votes = self._vote([links[i] for i in linked])
        walked = self._timed("walk", self._walk, [links[i] for i in linked], votes)
        results: list[Reasoned] = [
            Reasoned(status="no_entity", reason=link.reason or "no KB entity found in the question") for link in links
        ]
        for i, vote, outcome in zip(linked, votes, walked):
            results[i] = self._reasoned(links[i], vote, outcome)
        self.timings["total"] += time.perf_counter() - started
        self.questions_answered += len(questions)
        return results

    # --- stages --------------------------------------------------------------------------

    def _vote(self, links: Sequence[Link]) -> list[list[tuple[int, float]]]:
        """Per question, (path index, share of the vote) best first, startable paths only."""
        if not links or not self.index.paths:
            return [[] for _ in links]
        sims = self._similarities([link.template or "" for link in links])
        started = time.perf_counter()
        shares = knn_vote(sims, self.index.votes, TOP_K)
        wide: np.ndarray | None = None
        ranked = []
        for i, link in enumerate(links):
            startable = self._startable(link)  # a path that cannot leave the entity is no answer
            row = shares[i] * startable
            if not row.any():  # no near template fits this entity: let every template vote
                wide = knn_vote(sims, self.index.votes, sims.shape[1]) if wide is None else wide
                row = wide[i] * startable
            order = np.argsort(-row)[:MAX_PATHS]
            ranked.append(
                [(int(p), float(row[p])) for p in order if row[p] > 0 and row[p] >= MIN_SHARE * row[order[0]]]
            )
        self.timings["vote"] += time.perf_counter() - started
        return ranked

    def _similarities(self, keys: Sequence[str]) -> np.ndarray:
        """(B, T) cosines to the training templates; one encoder call for unseen templates."""
        vectors = np.empty((len(keys), self.index.vectors.shape[1]), dtype=np.float32)
        fresh: list[int] = []
        for i, key in enumerate(keys):
            row = self.index.row_of(key) if self.reuse_template_vectors else None
            if row is None:
                fresh.append(i)
            else:
                vectors[i] = self.index.vectors[row]  # same text, same vector: skip the encoder
        if fresh:
            vectors[fresh] = self._timed("encode", self.encoder.encode, [keys[i] for i in fresh])
        return vectors @ self.index.vectors.T

    def _startable(self, link: Link) -> np.ndarray:
        """(P,) 1 where a path's first relation leaves one of the link's entities, else 0."""
        leaving = np.zeros(self.kb.num_relations, dtype=np.float32)
        for entity in link.candidates[:MAX_ENTITIES]:
            leaving[self.kb.relations_of(entity)] = 1.0
        return leaving[self._first_relations]

    def _walk(self, links: Sequence[Link], votes: Sequence[list[tuple[int, float]]]) -> list[_Walked | None]:
        """Walk each question's best (path, entity) that reaches anything; batched by path."""
        attempts = [
            [(p, e) for p, _ in vote for e in link.candidates[:MAX_ENTITIES]] for link, vote in zip(links, votes)
        ]
        outcome: list[_Walked | None] = [None] * len(links)
        cursor = [0] * len(links)
        pending = [i for i in range(len(links)) if attempts[i]]
        while pending:
            groups: dict[int, list[int]] = defaultdict(list)
            for i in pending:
                groups[attempts[i][cursor[i]][0]].append(i)
            retry: list[int] = []
            for p, members in groups.items():
                starts = np.array([attempts[i][cursor[i]][1] for i in members])
                for i, walked in zip(members, self._walk_group(p, starts)):
                    outcome[i] = walked
                    cursor[i] += walked is None
                    if walked is None and cursor[i] < len(attempts[i]):
                        retry.append(i)
            pending = retry
        return outcome

    def _walk_group(self, path_index: int, starts: np.ndarray) -> list[_Walked | None]:
        """Walk one path from many starts at once and backtrack every kept answer."""
        path = self.index.paths[path_index]
        layers = follow(self.kb, starts, path)
        last = layers[-1]
        kept: list[tuple[np.ndarray, np.ndarray] | None] = []
        for row, start in enumerate(starts):
            lo, hi = last.indptr[row], last.indptr[row + 1]
            ends, counts = last.indices[lo:hi], last.data[lo:hi]
            mask = ends != start  # the question's own entity is never its answer
            ends, counts = ends[mask], counts[mask]
            order = np.lexsort((ends, -counts))[: self.max_answers]
            kept.append((ends[order], counts[order]) if len(order) else None)
        rows = np.concatenate(
            [np.full(len(k[0]), r) for r, k in enumerate(kept) if k is not None] or [np.empty(0, int)]
        )
        ends = np.concatenate([k[0] for k in kept if k is not None] or [np.empty(0, int)])
        walks = backtrack(self.kb, layers, path, rows, ends)
        result: list[_Walked | None] = []
        offset = 0
        for start, k in zip(starts, kept):
            if k is None:
                result.append(None)
                continue
            n = len(k[0])
            result.append(_Walked(int(start), path_index, path, k[0], k[1], walks[offset : offset + n]))
            offset += n
        return result

    # --- output --------------------------------------------------------------------------

    def _reasoned(self, link: Link, vote: list[tuple[int, float]], walked: _Walked | None) -> Reasoned:
        names, relations = self.kb.names, self.kb.relations
        if walked is None:
            topic = names[link.entity] if link.entity is not None else None
            reason = (
                "no relation path learned for this kind of question"
                if not vote
                else (f"the knowledge base has nothing along the likely relation paths from {topic!r}")
            )
            return Reasoned(status="ok", topic_entity=topic, reason=reason)
        share = dict(vote).get(walked.path_index, 0.0)
        confidence = float(np.clip(share * link.score, 0.0, 1.0))
        top = float(walked.counts.max())
        scores = confidence * (0.5 + 0.5 * walked.counts / top)  # support by more walks ranks first
        answers = [(names[e], float(s)) for e, s in zip(walked.ends, scores)]
        paths = [_path_names(walk, walked.path, names, relations) for walk in walked.walks]
        topic = names[walked.entity]
        rel_names = [relations[r] for r in walked.path]
        return Reasoned(
            status="ok",
            answers=answers,
            paths=paths,
            topic_entity=topic,
            confidence=confidence,
            sentence=sentence(topic, rel_names, [a for a, _ in answers]),
        )

    def _timed(self, stage: str, fn: Callable[..., T], *args: Any) -> T:
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.timings[stage] += time.perf_counter() - started


def knn_vote(sims: np.ndarray, votes: np.ndarray, k: int) -> np.ndarray:
    """(B, P) path shares from the k most similar templates of each row.

    Weights are `exp((cos - best) / TEMPERATURE)`: an exact template outweighs four
    neighbours 0.05 less similar. Shares are scaled by the best cosine, so a question far
    from every template gets a low confidence.
    """
    k = min(k, sims.shape[1])
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    top_sims = np.take_along_axis(sims, top, axis=1)
    best = top_sims.max(axis=1, keepdims=True)
    weights = np.exp((top_sims - best) / TEMPERATURE)
    shares = np.einsum("bk,bkp->bp", weights, votes[top]) / weights.sum(axis=1, keepdims=True)
    return shares * np.clip(best, 0.0, 1.0)


def _path_names(walk: np.ndarray, path: tuple[int, ...], names: list[str], relations: list[str]) -> list[str]:
    """[entity, relation, entity, ...] of one walk."""
    out = [names[walk[0]]]
    for hop, relation in enumerate(path, start=1):
        out += [relations[relation], names[walk[hop]]]
    return out
