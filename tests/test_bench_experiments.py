"""The benchmark's experiments: their pure parts here, and a short run of two of them
against the real Kafka and PostgreSQL with the instant `echo` reasoner (the harness is
under test, not the model; the figures of a smoke run mean nothing)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.bench import main
from harness.bench.calls import CallRecorder, read_calls
from harness.bench.echo import EchoReasoner
from harness.bench.experiments.caches import reasoner_ms_per_question, repeat_share
from harness.bench.experiments.timeline import convergence_s, rolling_p99
from harness.bench.workload import HOT_USER, Workload
from schemas.settings import Settings

INF = float("inf")


def test_convergence_is_the_end_of_the_last_window_over_target() -> None:
    # 10 questions/s for 30 s; those sent between 10 s and 16 s are slow
    samples = [(100 + i / 10, 500.0 if 100 <= i < 160 else 50.0) for i in range(300)]
    series = rolling_p99(samples, 100.0)
    assert convergence_s(series, 10.0, 30.0, 150.0) == 7.5  # [15.5, 17.5) is the last window holding a slow one
    assert convergence_s(series, 20.0, 30.0, 150.0) == 0.0
    late = samples[:-20] + [(t, INF) for t, _ in samples[-20:]]  # still unanswered at the end
    assert convergence_s(rolling_p99(late, 100.0), 10.0, 30.0, 150.0) is None


def test_skewed_workload_sends_the_hot_share_from_one_user() -> None:
    hot = Workload(users=100, services=4, hot_share=0.5, hops=(3,))
    records = [hot.record() for _ in range(2000)]
    share = sum(r.key == HOT_USER.encode() for r in records) / len(records)
    assert 0.45 < share < 0.56 and all(r.hops == 3 for r in records)
    plain = [Workload(seed=3).record().value for _ in range(1)]
    assert json.loads(plain[0])["service"].startswith("svc-")


def test_popular_workload_repeats_questions_and_the_plain_one_draws_as_before() -> None:
    texts = lambda w, n: [json.loads(w.record().value)["text"] for _ in range(n)]  # noqa: E731
    assert texts(Workload(seed=9), 50) == texts(Workload(seed=9, zipf=0.0), 50)
    popular = texts(Workload(seed=9, zipf=1.0), 1000)
    assert popular == texts(Workload(seed=9, zipf=1.0), 1000)  # seeded: the same questions in every run
    alike = texts(Workload(seed=9), 1000)
    assert len(set(popular)) < 0.7 * len(set(alike))
    assert repeat_share(Workload(seed=9, zipf=1.0), 1000) > 2 * repeat_share(Workload(seed=9), 1000)
    with pytest.raises(ValueError):
        Workload(zipf=-1.0)


class _Timed(EchoReasoner):
    """An instant reasoner that keeps per-stage timings, as the GNN reasoner does."""

    def __init__(self) -> None:
        super().__init__()
        self.timings: dict[str, float] = {}

    def answer_batch(self, questions: list) -> list:
        self.timings["encode"] = self.timings.get("encode", 0.0) + 0.002 * len(questions)
        self.timings["total"] = self.timings.get("total", 0.0) + 0.005 * len(questions)
        return super().answer_batch(questions)


def test_call_logs_carry_the_reasoners_stage_times(tmp_path: Path) -> None:
    from schemas.question import Question

    batch = [Question.model_validate(json.loads(Workload().record().value)) for _ in range(4)]
    recorder = CallRecorder(_Timed(), tmp_path / "timed.jsonl")
    recorder.answer_batch(batch[:3])
    recorder.answer_batch(batch[3:])
    seen = read_calls([tmp_path / "timed.jsonl"])
    assert seen["stages_ms"] == {"encode": 8.0, "total": 20.0}
    per_question = reasoner_ms_per_question(seen)
    assert per_question["questions"] == 4 and per_question["reasoner_ms_per_question"] == 5.0
    assert per_question["stage_ms_per_question"] == {"encode": 2.0}
    plain = CallRecorder(EchoReasoner(), tmp_path / "plain.jsonl")
    plain.answer_batch(batch)
    assert read_calls([tmp_path / "plain.jsonl"])["stages_ms"] == {}


class _Costly(EchoReasoner):
    def estimate_costs(self, questions: list) -> list[float]:
        return [10.0] * len(questions)


def test_call_recorder_keeps_the_workers_detection_of_estimates(tmp_path: Path) -> None:
    questions = [json.loads(Workload().record().value) for _ in range(3)]
    from schemas.question import Question

    batch = [Question.model_validate(q) for q in questions]
    plain = CallRecorder(EchoReasoner(), tmp_path / "plain.jsonl")
    assert getattr(plain, "estimate_costs", None) is None  # so the worker never splits
    plain.answer_batch(batch)
    costly = CallRecorder(_Costly(), tmp_path / "costly.jsonl")
    costly.estimate_costs(batch)
    costly.answer_batch(batch[:2])
    costly.answer_batch(batch[2:])
    assert read_calls([tmp_path / "plain.jsonl"])["estimate_costs"] is False
    seen = read_calls([tmp_path / "costly.jsonl"])
    assert seen["estimate_costs"] and seen["estimates"] == 1 and seen["costs"] == [10.0] * 3
    assert [(c["size"], c["cost"]) for c in seen["calls"]] == [(2, 20.0), (1, 10.0)]


@pytest.mark.timeout(300)
def test_skew_splitting_and_caches_experiments_smoke(
    services: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "--json",
        "--quick",
        "--reasoner",
        "echo",
        "--systems",
        "ceiling",
        "--experiments",
        "skew,splitting,caches",
        "--experiment-rate",
        "30",
        "--duration-s",
        "1",
        "--max-steps",
        "1",
        "--windows",
        "",
        "--budget-s",
        "20",
        "--out",
        str(tmp_path),
    ]
    main(argv)  # the exit status speaks for the ceiling's search, not for the experiments
    result = json.loads(capsys.readouterr().out)
    skew, splitting = result["experiments"]["skew"], result["experiments"]["splitting"]
    assert "error" not in skew and "error" not in splitting, (skew.get("error"), splitting.get("error"))
    for run in ("routing_off", "routing_on"):
        assert sum(skew[run]["per_partition"]["questions"].values()) > 0, run
        assert skew[run]["throughput_qps"] > 0, run
    assert skew["routing_on"]["router"] is not None  # read from the stream processor's /metrics
    assert splitting["active"] is False and "estimate_costs" in splitting["note"]  # echo cannot estimate
    assert splitting["off"]["reasoner_calls"]["count"] > 0
    caches = result["experiments"]["caches"]
    assert "error" not in caches, caches.get("error")
    runs = {r["name"]: r for r in caches["runs"]}
    assert list(runs) == ["shipped", "popular", "popular + subgraph cache", "no encode cache"]
    assert (
        runs["no encode cache"]["encode_cache_size"] == 0
        and runs["popular + subgraph cache"]["subgraph_cache_size"] > 0
    )
    assert all(r["questions"] > 0 and r["throughput_qps"] > 0 for r in runs.values())  # the restarted workers answer
    assert 0 < caches["popular_repeat_share"] < 1  # 45 draws here; the distribution has its own test
    report = (tmp_path / "report.md").read_text()
    assert "skew" in result["experiments_headline"] and "## Experiments" in report and "Experiment: caches" in report
