"""Questions typed the way people type them, answered by the committed GNN checkpoint.

Written by hand for this test, before the fine-tuned encoder was trained: phrasings in no
training file and not in tests/data/paraphrases.txt (checked below), with fillers, typos,
odd casing, synonyms of the relation words and no punctuation. Gold answers come from the KB
along the question's relation path (MetaQA's rule: a walk never comes back to its topic).
No services needed.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

from reasoning.gnn.encoder_tuning import masked
from reasoning.gnn.reasoner import GnnReasoner
from reasoning.linking import template_key
from reasoning.metaqa import HOPS, VARIANTS, qa_file, read_qa
from reasoning.paths import follow_from
from schemas.question import Question
from schemas.settings import Settings

PARAPHRASES = Path(__file__).resolve().parent / "data" / "paraphrases.txt"

# (question, topic entity, relation path)
TYPED: list[tuple[str, str, tuple[str, ...]]] = [
    ("hey, who was the filmmaker behind Top Hat?", "Top Hat", ("directed_by",)),
    ("what movies has ginger rogers appeared in", "Ginger Rogers", ("starred_actors_inv",)),
    ("when did Pulp Fiction come out", "Pulp Fiction", ("release_year",)),
    ("who penned the script of Chinatown please", "Chinatown", ("written_by",)),
    ("CASABLANCA was directed by who", "Casablanca", ("directed_by",)),
    ("what langauge is Amélie in", "Amélie", ("in_language",)),
    ("can you tell me who acted in the films Woody Allen wrote", "Woody Allen", ("written_by_inv", "starred_actors")),
    ("Akira Kurosawa movies - what languages", "Akira Kurosawa", ("directed_by_inv", "in_language")),
    ("who did audrey hepburn share the screen with", "Audrey Hepburn", ("starred_actors_inv", "starred_actors")),
    ("what years did Stanley Kubrick's films come out", "Stanley Kubrick", ("directed_by_inv", "release_year")),
    (
        "what kinds of films did the guy who directed Top Hat make",
        "Top Hat",
        ("directed_by", "directed_by_inv", "has_genre"),
    ),
    (
        "i wonder who wrote the movies that share actors with Chinatown",
        "Chinatown",
        ("starred_actors", "starred_actors_inv", "written_by"),
    ),
    (
        "the director of top hat, in what years did his other films get released",
        "Top Hat",
        ("directed_by", "directed_by_inv", "release_year"),
    ),
]
# Measured with the committed checkpoint (2026-12-04 18:54, sha256 ba722440…): 11 of 13. Missed:
# "who did audrey hepburn share the screen with" (reads the 1-hop "her films", not her co-stars)
# and "the director of top hat, in what years did his other films get released" (stops after
# two hops: his films, not their years). A model that answers fewer fails; one that answers
# more should raise this.
MIN_HITS = 11


@pytest.fixture(scope="module")
def reasoner() -> GnnReasoner:
    return GnnReasoner.load(Settings(kb_path=None, reasoner="gnn", device="cpu"))


def _masked(text: str, entity: str) -> str:
    at = text.lower().index(entity.lower())
    return template_key(text, (at, at + len(entity)))


def test_typed_questions_are_new_phrasings() -> None:
    files = [qa_file(hop, split, variant) for variant in VARIANTS for hop in HOPS for split in ("train", "val")]
    seen = {masked(p.question) for path in [*files, PARAPHRASES] for p in read_qa(path)}
    for text, entity, _ in TYPED:
        assert _masked(text, entity) not in seen, text


def test_typed_questions_are_answered(reasoner: GnnReasoner) -> None:
    kb = reasoner.kb
    questions = [Question(question_id=uuid.uuid4(), service="test", user_id="u", text=t, ts=0) for t, _, _ in TYPED]
    hits, missed = 0, []
    for (text, entity, path), result in zip(TYPED, reasoner.answer_batch(questions)):
        assert result.status == "ok" and result.topic_entity == entity, (text, result.topic_entity, result.reason)
        start = np.array([kb.entity_id(entity)])
        gold = {kb.names[i] for i in follow_from(kb, start, [kb.relation_id(r) for r in path]).indices}
        assert gold, f"no gold for {text!r}: the KB changed"
        if result.answers and result.answers[0][0] in gold:
            hits += 1
        else:
            missed.append((text, result.answers[:3], result.paths[:1]))
    assert hits >= MIN_HITS, missed
