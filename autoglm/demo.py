"""`autoglm demo`: the whole loop on real services, with answers, paths and a summary."""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

from autoglm.client import MetaQAItem, answers_tail, ask, make_question, read_metaqa, send_questions
from autoglm.render import print_answer
from reasoning.metaqa import qa_file
from runtime.clock import now_ms
from runtime.fleet import Fleet
from schemas.answer import Answer
from schemas.settings import Settings


def demo_items(n: int, raw_text: bool, seed: int = 11) -> list[MetaQAItem]:
    """n questions from qa_val, mixed over 1-, 2- and 3-hop, deterministically sampled."""
    pool: list[MetaQAItem] = []
    for hops in (1, 2, 3):
        pool.extend(read_metaqa(qa_file(hops, "val"), raw_text=raw_text))
    random.Random(seed).shuffle(pool)
    return pool[:n]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def wait_until_serving(settings: Settings, timeout_s: float) -> None:
    """Ask probe questions until the pipeline answers one (models load, groups join)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            await ask(settings, "what movies did [Ginger Rogers] act in", "demo", "probe", timeout_s=15)
            return
        except TimeoutError as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    "the pipeline did not answer within the start-up time; see .state/demo/*.log"
                ) from exc


async def drive(settings: Settings, items: list[MetaQAItem], timeout_s: float) -> tuple[dict, dict, float, float]:
    """Produce the questions, collect their answers; returns (answers, gold, t_first_send, t_last_answer)."""
    consumer, _ = await answers_tail(settings)
    rng = random.Random(3)
    questions = [make_question(it.text, f"svc-{rng.randrange(3)}", f"user-{rng.randrange(40)}") for it in items]
    gold = {q.question_id: it.gold for q, it in zip(questions, items)}
    got: dict = {}
    received_ms: dict = {}
    t0 = time.monotonic()
    sender = asyncio.create_task(send_questions(settings, questions))
    deadline = t0 + timeout_s
    t_last = t0
    try:
        while len(got) < len(questions) and time.monotonic() < deadline:
            polled = await consumer.getmany(timeout_ms=200)
            for records in polled.values():
                for rec in records:
                    answer = Answer.from_bytes(rec.value)
                    if answer.question_id in gold and answer.question_id not in got:
                        got[answer.question_id] = answer
                        received_ms[answer.question_id] = now_ms()
                        t_last = time.monotonic()
        await sender
    finally:
        await consumer.stop()
    return got, {"gold": gold, "received_ms": received_ms}, t0, t_last


# Typed the way people ask, not in MetaQA's templates; none of them is in a data file.
FREE_FORM = (
    "who directed heat",
    "hey, which movies did ginger rogers star in?",
    "what language is amelie in",
    "who wrote the films that spielberg directed",
)


async def ask_free_form(settings: Settings, timeout_s: float = 60.0) -> list[Answer]:
    """Each free-form question through the running pipeline, one after another."""
    return [await ask(settings, text, "demo", "free-form", timeout_s=timeout_s) for text in FREE_FORM]


def run_demo(settings: Settings, n: int, workers: int, raw_text: bool, reasoner: str | None) -> int:
    from runtime.services import up

    up(settings)
    log_dir = Path(settings.state_dir) / "demo"
    log_dir.mkdir(parents=True, exist_ok=True)
    if reasoner:
        settings = settings.model_copy(update={"reasoner": reasoner})
    fleet = Fleet(settings, log_dir)
    fleet.start_pipeline(workers, settings.health_port)
    try:
        print(f"pipeline starting (logs in {log_dir}) ...", file=sys.stderr)
        asyncio.run(wait_until_serving(settings, timeout_s=300))
        items = demo_items(n, raw_text)
        got, extra, t0, t_last = asyncio.run(drive(settings, items, timeout_s=300))
        free_form = asyncio.run(ask_free_form(settings))
    finally:
        fleet.stop_all()
    gold, received = extra["gold"], extra["received_ms"]
    for answer in list(got.values())[:5]:
        print_answer(answer)
        print(f"   gold: {', '.join(gold[answer.question_id])}\n")
    hits = sum(1 for qid, a in got.items() if a.answers and a.answers[0].entity in gold[qid])
    e2e = [received[qid] - a.question_ts for qid, a in got.items()]
    elapsed = max(1e-9, t_last - t0)
    print("free-form questions (typed as people type them: no brackets, no template)")
    for answer in free_form:
        print_answer(answer)
        print()
    print("summary")
    print(f"  questions sent      {len(items)}")
    print(f"  answered            {len(got)}")
    print(f"  Hits@1              {hits / max(1, len(items)):.3f}")
    print(f"  throughput          {len(got) / elapsed:.0f} questions/s")
    if e2e:
        print(f"  end-to-end latency  p50 {statistics.median(e2e):.0f} ms   p99 {percentile(e2e, 0.99):.0f} ms")
    return 0 if len(got) == len(items) else 1
