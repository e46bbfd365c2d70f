"""The per-question metrics of `reasoning.evaluate.score`, tie handling included."""

from __future__ import annotations

import pytest

from reasoning.evaluate import score
from reasoning.metaqa import QAPair
from reasoning.reasoner import Reasoned


def _pair(answers: list[str]) -> QAPair:
    return QAPair(question="who acted in [King Kong]", answers=tuple(answers))


def test_strict_hit_depends_on_the_first_answer_only() -> None:
    result = Reasoned(status="ok", answers=[("Jack Black", 0.9), ("Fay Wray", 0.9), ("Naomi Watts", 0.5)])
    figures = score(_pair(["Fay Wray"]), result)
    assert figures["hits_at_1"] == 0.0
    # Two candidates tie at the top and one of them is gold: a random order hits half the time.
    assert figures["hits_at_1_random_ties"] == pytest.approx(0.5)


def test_random_ties_equals_strict_without_ties() -> None:
    result = Reasoned(status="ok", answers=[("Fay Wray", 0.9), ("Jack Black", 0.8)])
    figures = score(_pair(["Fay Wray"]), result)
    assert figures["hits_at_1"] == figures["hits_at_1_random_ties"] == 1.0
    assert score(_pair(["Naomi Watts"]), result)["hits_at_1_random_ties"] == 0.0


def test_no_answer_scores_zero() -> None:
    figures = score(_pair(["Fay Wray"]), Reasoned(status="no_entity"))
    assert figures["hits_at_1"] == figures["hits_at_1_random_ties"] == figures["f1"] == 0.0
