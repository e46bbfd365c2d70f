"""Generates the committed JSON Schema files (schemas/json/) from the typed definitions.

Consumers in other languages read these files; `python -m schemas.export` rewrites them,
and a test fails when a committed file differs from what the definitions generate.
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

from schemas.answer import Answer
from schemas.base import Message
from schemas.batch import Batch
from schemas.dead_letter import DeadLetter
from schemas.feedback import Feedback
from schemas.question import Question
from schemas.worker_status import WorkerStatus

JSON_DIR = Path(__file__).resolve().parent / "json"

MESSAGES: dict[str, type[Message]] = {
    "questions": Question,
    "questions.dlq": DeadLetter,
    "batches": Batch,
    "answers": Answer,
    "feedback": Feedback,
    "workers.status": WorkerStatus,
}


def render(topic: str, model: type[Message]) -> bytes:
    """The JSON Schema of one topic's messages, stable byte for byte."""
    schema = model.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://open-autoglm.dev/schemas/{topic}.schema.json"
    schema["x-topic"] = topic
    return orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def expected_files() -> dict[Path, bytes]:
    return {JSON_DIR / f"{topic}.schema.json": render(topic, model) for topic, model in MESSAGES.items()}


def main() -> int:
    JSON_DIR.mkdir(exist_ok=True)
    for path, content in expected_files().items():
        path.write_bytes(content)
        print(f"wrote {path.relative_to(JSON_DIR.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
