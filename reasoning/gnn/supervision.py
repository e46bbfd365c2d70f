"""What training learns from: MetaQA `qa_train` questions with mined relation-path targets.

MetaQA gives a question, its bracketed topic entity and its answers, never the relations in
between. Questions are grouped by their masked template (`what films did NE act in`) and
each group's relation paths are mined from the KB (`reasoning.path_mining`): the share of the
group's questions each path explains best becomes the soft per-hop target of the relation
head (`hop_targets`). The answers themselves supervise the GNN.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reasoning import path_mining
from reasoning import paths as paths_module
from reasoning.kb import KnowledgeBase, file_sha256
from reasoning.linking import template_key
from reasoning.metaqa import bracket_span, read_qa
from reasoning.path_mining import MinedQuestion, mine

RelationPath = tuple[int, ...]
MINING_VERSION = 1  # bump when mining changes: cached paths are then recomputed
MINING_BLOCK = 32  # templates mined together (the miner stacks their samples)


@dataclass(frozen=True)
class TrainQuestion:
    """A training question reduced to ids."""

    template: str  # template_key of the bracketed question
    hops: int  # 1, 2 or 3: which MetaQA file it came from
    topic: int
    answers: tuple[int, ...]  # gold answers found in the KB


@dataclass
class Supervision:
    questions: list[TrainQuestion]
    paths: dict[str, Counter[RelationPath]]  # template -> how many questions each path explains
    templates: Counter[str] = field(default_factory=Counter)  # template -> frequency (for the linker)
    topics: Counter[int] = field(default_factory=Counter)  # entity -> times a topic (for the linker)


def read_questions(kb: KnowledgeBase, files: Sequence[tuple[int, Path]]) -> list[TrainQuestion]:
    """(hops, path) files → questions whose bracketed topic is a KB entity."""
    out = []
    for hops, path in files:
        for pair in read_qa(path):
            marked = bracket_span(pair.question)
            topic = kb.entity_id(marked[2]) if marked else None
            if marked is None or topic is None:
                continue
            answers = tuple(i for a in pair.answers if (i := kb.entity_id(a)) is not None)
            out.append(TrainQuestion(template_key(pair.question, marked[:2]), hops, topic, answers))
    return out


def mine_supervision(
    kb: KnowledgeBase,
    files: Sequence[tuple[int, Path]],
    max_hops: int = 3,
    progress: Callable[[Iterable[int]], Iterable[int]] = iter,
    cache_dir: Path | None = None,
) -> Supervision:
    """Read the training files and mine every template's relation paths (about a minute).

    `progress` wraps the iteration over blocks of templates (e.g. `tqdm`). With `cache_dir`, mined
    paths are kept in a JSON file keyed by the KB's and the files' checksums.
    """
    questions = read_questions(kb, files)
    if not questions:
        raise ValueError("no training question has a bracketed topic entity found in the KB")
    # Keyed by everything the paths derive from, the miner's own code included.
    miner = [file_sha256(Path(module.__file__)) for module in (path_mining, paths_module)]
    key = "|".join([f"v{MINING_VERSION}", str(max_hops), kb.sha256 or ""] + miner + [file_sha256(p) for _, p in files])
    cache = cache_dir / f"paths-{hashlib.sha256(key.encode()).hexdigest()[:24]}.json" if cache_dir else None
    if cache is not None and cache.exists():
        stored = json.loads(cache.read_text())
        paths = {t: Counter({tuple(p): n for p, n in rows}) for t, rows in stored.items()}
    else:
        groups: dict[str, list[MinedQuestion]] = {}
        for q in questions:
            mined = MinedQuestion(q.template, q.topic, q.answers, max(len(q.answers), 1))
            groups.setdefault(q.template, []).append(mined)
        names = sorted(groups)
        paths = {}
        for lo in progress(range(0, len(names), MINING_BLOCK)):  # blocks: one progress step each
            block = [m for t in names[lo : lo + MINING_BLOCK] for m in groups[t]]
            paths.update({str(t): c for t, c in mine(kb, block, max_hops).items()})
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            rows = {t: [[list(p), n] for p, n in c.most_common()] for t, c in paths.items()}
            cache.write_text(json.dumps(rows))
    return Supervision(
        questions=questions,
        paths=paths,
        templates=Counter(q.template for q in questions),
        topics=Counter(q.topic for q in questions),
    )


def hop_targets(
    paths: Counter[RelationPath], num_relations: int, max_hops: int, noise_floor: float = 0.1
) -> np.ndarray:
    """(T, R + 1) soft targets: at hop t, the share of paths taking each relation, or END.

    Paths that explain less than `noise_floor` of a template's questions are dropped: they
    are coincidences of the data (a director who also wrote that one film), not readings
    of the question. Real ambiguity, where two paths each explain many questions, stays.
    """
    target = np.zeros((max_hops, num_relations + 1), dtype=np.float32)
    total = sum(paths.values())
    kept = {p: n for p, n in paths.items() if total and n / total >= noise_floor}
    if not kept:
        target[:, num_relations] = 1.0
        return target
    total = sum(kept.values())
    for path, n in kept.items():
        for t in range(max_hops):
            target[t, path[t] if t < len(path) else num_relations] += n / total
    return target
