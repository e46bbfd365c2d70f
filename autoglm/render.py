"""How the CLI prints an answer: the question, status, answers with their reasoning paths."""

from __future__ import annotations

from schemas.answer import Answer


def print_answer(answer: Answer) -> None:
    """A few lines per answer: at most five answers, each with its path."""
    print(f"Q: {answer.text}")
    print(f"   status={answer.status} confidence={answer.confidence:.2f} model={answer.model.name}")
    if answer.reason:
        print(f"   reason: {answer.reason}")
    for item, path in list(zip(answer.answers, answer.paths))[:5]:
        print(f"   {item.entity}  ({item.score:.2f})   path: {' -> '.join(path)}")
    if len(answer.answers) > 5:
        print(f"   ... {len(answer.answers) - 5} more")
    if answer.sentence:
        print(f"   {answer.sentence}")
