"""What the benchmark asks: qa_val questions, 1-, 2- and 3-hop in equal parts, from many
users of several services, as ready-to-send `questions` records.

Two sets of questions (`WORKLOADS`): `ntm`, MetaQA's paraphrased qa_val in raw text (how
people type: nearly every question a new phrasing), the default when its files are there;
and `templated`, MetaQA's own qa_val, whose few templates flatter every cache."""

from __future__ import annotations

import itertools
import random
import time
import uuid
from dataclasses import dataclass

import orjson

from reasoning.metaqa import HOPS, qa_file, read_qa, strip_brackets
from schemas.base import SCHEMA_VERSION


@dataclass(frozen=True)
class Record:
    """One question record: Kafka key and value, its id, and its hop count."""

    key: bytes
    value: bytes
    question_id: str
    hops: int


HOT_USER, HOT_SERVICE = "user-0", "svc-0"
PARAPHRASED, TEMPLATED = "ntm", "templated"
WORKLOADS = (PARAPHRASED, TEMPLATED)
SOURCES = {PARAPHRASED: "MetaQA NTM qa_val (paraphrased, raw text)", TEMPLATED: "MetaQA qa_val (templated)"}


def default_workload() -> str:
    """`ntm` when the NTM qa_val files are packaged, else `templated`."""
    return PARAPHRASED if all(qa_file(hop, "val", "ntm").exists() for hop in HOPS) else TEMPLATED


class Workload:
    """Draws questions: hop count uniformly (out of `hops`), then a qa_val question of that
    hop, a user out of `users` and a service out of `services`, from one seeded generator.
    Question ids are always fresh: the pipeline answers an id it has seen before only once.

    `hot_share` > 0 makes the load skewed: that share of the questions comes from one user
    of one service (`user-0` of `svc-0`), whose cluster key hashes to one `batches`
    partition, so one worker gets the bulk of the work unless routing spreads it.

    `zipf` > 0 makes some questions popular: within a hop, the question of rank k (in an
    order shuffled once by the seed) is drawn with weight 1 / k**zipf, as the same popular
    questions come back in real traffic; 0 draws every question alike (qa_val repeats
    none, so a cache keyed on the whole question would never hit).

    `questions` is one of `WORKLOADS` (default: `default_workload()`, `autoglm bench
    --workload` chooses); `ntm` questions are always raw text, `raw_text` removes the
    brackets of templated ones."""

    def __init__(
        self,
        users: int = 100,
        services: int = 4,
        raw_text: bool = False,
        seed: int = 17,
        hot_share: float = 0.0,
        hops: tuple[int, ...] = HOPS,
        zipf: float = 0.0,
        questions: str | None = None,
    ) -> None:
        questions = questions or default_workload()
        if questions not in WORKLOADS:
            raise ValueError(f"unknown workload {questions!r}: choose from {', '.join(WORKLOADS)}")
        if users < 1 or services < 1:
            raise ValueError("the workload needs at least one user and one service")
        if not 0.0 <= hot_share <= 1.0 or not hops or set(hops) - set(HOPS):
            raise ValueError(f"hot_share must be in [0, 1] and hops a non-empty subset of {HOPS}")
        if zipf < 0:
            raise ValueError("zipf must be >= 0 (0: every question alike)")
        self.users = users
        self.services = services
        self.questions = questions
        self.raw_text = raw_text or questions == PARAPHRASED
        self.hot_share = hot_share
        self.hops = tuple(hops)
        self.rng = random.Random(seed)
        variant = "ntm" if questions == PARAPHRASED else "vanilla"
        self.texts = {hop: [self._text(p.question) for p in read_qa(qa_file(hop, "val", variant))] for hop in self.hops}
        self.zipf = zipf
        self._popularity: dict[int, list[float]] = {}  # hop -> cumulative weights, by rank
        if zipf:
            order = random.Random(seed)
            for hop, texts in self.texts.items():
                order.shuffle(texts)
                self._popularity[hop] = list(itertools.accumulate(1.0 / (k + 1) ** zipf for k in range(len(texts))))

    def _text(self, question: str) -> str:
        return strip_brackets(question) if self.raw_text else question

    def record(self, ts_ms: int | None = None) -> Record:
        """A fresh question (new id) stamped `ts_ms` (now when omitted)."""
        rng = self.rng
        hops = rng.choice(self.hops)
        user = f"user-{rng.randrange(self.users)}"
        service = f"svc-{rng.randrange(self.services)}"
        if self.hot_share and rng.random() < self.hot_share:  # no extra draw when unskewed: same sequence as before
            user, service = HOT_USER, HOT_SERVICE
        question_id = str(uuid.uuid4())  # fresh every run: the answers table remembers ids
        value = orjson.dumps(
            {
                "schema_version": SCHEMA_VERSION,
                "question_id": question_id,
                "service": service,
                "user_id": user,
                "text": self._question(hops),
                "ts": int(time.time() * 1000) if ts_ms is None else ts_ms,
            }
        )
        return Record(key=user.encode(), value=value, question_id=question_id, hops=hops)

    def _question(self, hops: int) -> str:
        if not self.zipf:
            return self.rng.choice(self.texts[hops])  # the same draws as before zipf existed
        return self.rng.choices(self.texts[hops], cum_weights=self._popularity[hops])[0]

    def describe(self) -> dict:
        return {
            "source": f"{SOURCES[self.questions]}, {'/'.join(map(str, self.hops))}-hop in equal parts",
            "questions": self.questions,
            "users": self.users,
            "services": self.services,
            "raw_text": self.raw_text,
            "hot_share": self.hot_share,
            "zipf": self.zipf,
            "questions_per_hop": {hop: len(t) for hop, t in self.texts.items()},
        }
