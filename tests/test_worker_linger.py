"""The worker waits briefly for more questions when its recent rate predicts them
(`workers.linger`), so questions that come a little apart share one reasoner call."""

from __future__ import annotations

import time
import uuid

import pytest

from schemas.answer import Answer
from schemas.question import Question
from schemas.topics import ANSWERS, QUESTIONS, topic_name
from tests.conftest import Pipeline, produce_raw, read_topic
from workers.linger import Linger


def test_no_wait_below_the_busy_rate() -> None:
    linger = Linger(window_s=0.050, target=16, min_rate=40)
    for i in range(30):  # 30 q/s over the last second
        linger.observe(1, now=99.0 + i / 30)
    assert linger.wait_s(in_hand=1, first_poll=100.0, now=100.0) == 0.0


def test_busy_worker_waits_the_rest_of_the_window_or_for_the_target() -> None:
    linger = Linger(window_s=0.050, target=16, min_rate=40)
    for i in range(150):  # 150 q/s over the last second
        linger.observe(1, now=99.0 + i / 150)
    assert linger.rate(100.0) == pytest.approx(149, abs=1)
    assert linger.wait_s(in_hand=1, first_poll=100.0, now=100.004) == pytest.approx(0.046)
    assert linger.wait_s(in_hand=1, first_poll=100.0, now=100.051) == 0.0  # window over
    assert linger.wait_s(in_hand=16, first_poll=100.0, now=100.004) == 0.0  # target in hand


def test_rate_forgets_polls_older_than_its_span() -> None:
    linger = Linger(window_s=0.050, target=16, min_rate=40, span_s=1.0)
    linger.observe(500, now=10.0)
    assert linger.rate(10.5) == 500
    assert linger.rate(11.5) == 0
    assert linger.wait_s(in_hand=1, first_poll=11.5, now=11.5) == 0.0


def test_zero_window_never_waits() -> None:
    linger = Linger(window_s=0.0, target=16)
    linger.observe(1000, now=1.0)
    assert linger.wait_s(in_hand=1, first_poll=1.0, now=1.0) == 0.0


def _ask(pipeline: Pipeline, n: int, gap_s: float) -> list[uuid.UUID]:
    s = pipeline.settings
    ids = []
    for i in range(n):
        q = Question(
            question_id=uuid.uuid4(),
            service="svc-linger",
            user_id=f"u{uuid.uuid4().hex[:6]}",
            text="who directed [Heat]",
            ts=int(time.time() * 1000),
        )
        produce_raw(s, topic_name(s, QUESTIONS), [(q.user_id.encode(), q.to_bytes())])
        ids.append(q.question_id)
        if i < n - 1:
            time.sleep(gap_s)
    return ids


@pytest.mark.parametrize("linger_ms", [4000, 0])
def test_questions_a_little_apart_share_one_call_only_when_lingering(pipeline: Pipeline, linger_ms: int) -> None:
    pipeline.configure(
        worker_linger_ms=linger_ms,
        worker_linger_questions=4,
        worker_linger_min_qps=0.5,
        worker_linger_adaptive=False,
        reasoner="baseline",
    )
    pipeline.start("streams", "streams")
    pipeline.start("worker-1", "workers")
    s = pipeline.settings
    warm = _ask(pipeline, 1, 0)  # answered once the worker is up (after its linger, if any)
    assert len(read_topic(s, topic_name(s, ANSWERS), expect=1, timeout_s=240)) == 1, pipeline.logs()
    time.sleep(1.5)  # the warm-up question leaves the worker's one-second rate
    ids = _ask(pipeline, 4, gap_s=0.3)
    records = read_topic(s, topic_name(s, ANSWERS), expect=5, timeout_s=60)
    answers = {a.question_id: a for a in (Answer.from_bytes(r.value()) for r in records)}
    assert len(records) == 5 and set(answers) == {*warm, *ids}, pipeline.logs()
    calls = {(answers[i].answered_ts, answers[i].latency.inference_ms) for i in ids}
    if linger_ms:  # busy by this test's measure (0.5 q/s): the worker waits for all four
        assert len(calls) == 1, calls
    else:  # 0.3 s apart and nothing waits: separate calls
        assert len(calls) >= 3, calls


def test_bad_settings_name_what_to_set() -> None:
    with pytest.raises(ValueError, match="AUTOGLM_WORKER_LINGER_MS"):
        Linger(window_s=-0.01, target=16)
    with pytest.raises(ValueError, match="AUTOGLM_WORKER_LINGER_QUESTIONS"):
        Linger(window_s=0.05, target=0)
