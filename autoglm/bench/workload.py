"""What the benchmark asks: qa_val questions, 1-, 2- and 3-hop in equal parts, from many
users of several services, as ready-to-send `questions` records."""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass

import orjson

from schemas.base import SCHEMA_VERSION
from workers.metaqa import HOPS, qa_file, read_qa, strip_brackets


@dataclass(frozen=True)
class Record:
    """One question record: Kafka key and value, its id, and its hop count."""

    key: bytes
    value: bytes
    question_id: str
    hops: int


class Workload:
    """Draws questions: hop count uniformly, then a qa_val question of that hop, a user
    out of `users` and a service out of `services`, from one seeded generator. Question
    ids are always fresh: the pipeline answers an id it has seen before only once."""

    def __init__(self, users: int = 100, services: int = 4, raw_text: bool = False, seed: int = 17) -> None:
        if users < 1 or services < 1:
            raise ValueError("the workload needs at least one user and one service")
        self.users = users
        self.services = services
        self.raw_text = raw_text
        self.rng = random.Random(seed)
        self.texts = {hop: [self._text(p.question) for p in read_qa(qa_file(hop, "val"))] for hop in HOPS}

    def _text(self, question: str) -> str:
        return strip_brackets(question) if self.raw_text else question

    def record(self, ts_ms: int | None = None) -> Record:
        """A fresh question (new id) stamped `ts_ms` (now when omitted)."""
        rng = self.rng
        hops = rng.choice(HOPS)
        user = f"user-{rng.randrange(self.users)}"
        question_id = str(uuid.uuid4())  # fresh every run: the answers table remembers ids
        value = orjson.dumps(
            {
                "schema_version": SCHEMA_VERSION,
                "question_id": question_id,
                "service": f"svc-{rng.randrange(self.services)}",
                "user_id": user,
                "text": rng.choice(self.texts[hops]),
                "ts": int(time.time() * 1000) if ts_ms is None else ts_ms,
            }
        )
        return Record(key=user.encode(), value=value, question_id=question_id, hops=hops)

    def describe(self) -> dict:
        return {
            "source": "MetaQA qa_val, 1/2/3-hop in equal parts",
            "users": self.users,
            "services": self.services,
            "raw_text": self.raw_text,
            "questions_per_hop": {hop: len(t) for hop, t in self.texts.items()},
        }
