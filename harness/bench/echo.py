"""A reasoner that answers instantly with the question's bracketed entity: for smoke runs
of the harness only (`--reasoner echo`), never for reported figures."""

from __future__ import annotations

from collections.abc import Sequence

from reasoning.metaqa import bracket_span
from reasoning.reasoner import Reasoned
from schemas.question import Question


class EchoReasoner:
    name = "echo"
    version = "echo-1"

    def answer_batch(self, questions: Sequence[Question]) -> list[Reasoned]:
        out = []
        for q in questions:
            span = bracket_span(q.text)
            entity = span[2] if span else q.text[:32]
            out.append(Reasoned(status="ok", answers=[(entity, 1.0)], paths=[[entity]], topic_entity=entity))
        return out


def load_echo(settings: object = None) -> EchoReasoner:
    """A loader (`workers.reasoner_process`): the echo reasoner, whatever the settings."""
    return EchoReasoner()
