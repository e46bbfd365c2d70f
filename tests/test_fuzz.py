"""Hostile and malformed input: the oracle, the decoder's totality, and a shortened fuzz run
against the real stream processor and worker (`autoglm fuzz --n 100000` is the full one)."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path
from typing import get_args

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.fuzz.cases import FEEDBACK, QUESTIONS, Generator, expected_by_decoder, generate, regression_cases
from harness.fuzz.run import run
from schemas.dead_letter import ErrorClass
from schemas.feedback import Feedback
from schemas.question import Question
from schemas.settings import Settings
from schemas.wire import WireError, decode

LIMIT = 64 * 1024


def test_oracle_by_construction_agrees_with_the_decoder() -> None:
    cases = generate(20_000, seed=3, run_tag="oracle", max_bytes=LIMIT)
    disagreements = Counter(
        (c.topic, c.category, c.expect, d) for c in cases if (d := expected_by_decoder(c, LIMIT)) != c.expect
    )
    assert not disagreements, disagreements.most_common(5)
    classes = {c.expect for c in cases}
    assert classes == set(get_args(ErrorClass)) - {"duplicate_in_batch"} | {None}
    assert {c.topic for c in cases} == {QUESTIONS, FEEDBACK}


def test_every_fuzz_run_sends_the_regression_records() -> None:
    """The records of bugs found and fixed are always in the mix (there is no switch for them)."""
    categories = Counter(c.category for c in generate(5_000, seed=7, run_tag="mix", max_bytes=LIMIT))
    assert {"dead_letter_over_1mb", "deep_context_unserialisable", "ts_over_int64"} <= set(categories), categories


def test_generation_is_reproducible_from_the_seed() -> None:
    first = generate(500, seed=11, run_tag="same", max_bytes=LIMIT)
    again = generate(500, seed=11, run_tag="same", max_bytes=LIMIT)
    assert [(c.value, c.key, c.expect) for c in first] == [(c.value, c.key, c.expect) for c in again]


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=512))
def test_decode_refuses_any_bytes_only_with_a_wire_error(raw: bytes) -> None:
    for model in (Question, Feedback):
        try:
            decode(raw, model, LIMIT)
        except WireError:
            pass


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
FIELDS = st.sampled_from(
    [
        "question_id",
        "feedback_id",
        "service",
        "user_id",
        "text",
        "ts",
        "score",
        "correction",
        "comment",
        "topic_entity",
        "context",
        "schema_version",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(FIELDS, JSON, max_size=8))
def test_any_json_object_is_accepted_or_refused_with_a_wire_error(obj: dict) -> None:
    try:
        raw = orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        return  # integers past 64 bits cannot be written as JSON by orjson either
    for model in (Question, Feedback):
        try:
            message = decode(raw, model, LIMIT)
        except WireError:
            continue
        assert model.from_bytes(message.to_bytes()) == message  # what is accepted can be written back


@pytest.mark.parametrize("topic", [QUESTIONS, FEEDBACK])
def test_regression_records_are_refused(topic: str) -> None:
    """ts >= 2**63 overflows PostgreSQL bigint; a context nested 250..1023 deep parses but cannot
    be serialised again (the batch producer would fail): both once got past decode."""
    g = Generator(seed=5, run_tag="bugs", max_bytes=LIMIT)
    cases = [regression_cases(g, topic) for _ in range(40)]
    cases = [c for c in cases if c.category != "dead_letter_over_1mb"]
    assert cases and all(expected_by_decoder(c, LIMIT) == c.expect for c in cases)


def test_fuzz_run_against_the_real_pipeline(isolated: Settings, tmp_path: Path) -> None:
    """5,000 generated records: zero crashes, every bad record dead-lettered with its class and
    bytes, every good question answered once, every good feedback stored scrubbed."""
    summary = run(isolated, n=5_000, seed=7, log_dir=tmp_path, timeout_s=420)
    shown = {k: v for k, v in summary.items() if k != "by_category"}
    assert summary["processes_died"] == [] and not any(summary["tracebacks_in_logs"].values()), shown
    assert summary["dlq_missing"] == 0 and summary["dlq_wrong_class"] == {}, shown
    assert summary["dead_lettered"] == summary["invalid_expected"] > 4_000, shown
    assert summary["answered_on_topic"] == summary["answer_rows"] == summary["good_questions"] > 50, shown
    assert summary["feedback_rows"] == summary["good_feedback"] > 50, shown
    assert summary["ok"], shown


@pytest.mark.parametrize("backslashes", [1, 2, 3, 4])
def test_only_a_real_nul_escape_is_refused(backslashes: int) -> None:
    r"""`\u0000` is NUL (refused: PostgreSQL cannot store it); `\\u0000` is a backslash and text."""
    text = b"a" + b"\\" * backslashes + b"u0000b"
    raw = b'{"question_id":"%s","service":"s","user_id":"u","text":"%s","ts":1}' % (str(uuid.uuid4()).encode(), text)
    if backslashes % 2:
        with pytest.raises(WireError) as err:
            decode(raw, Question, LIMIT)
        assert err.value.error_class == "schema_validation"
    else:
        assert "\x00" not in decode(raw, Question, LIMIT).text
