"""The benchmark's CPU-per-question figures and the bound they put on a fraction of the ceiling."""

from __future__ import annotations

import pytest

from harness.bench.report import cpu_us_per_question, reasoner_bound


def test_cpu_per_question_is_each_process_share_over_the_throughput() -> None:
    step = {"throughput_qps": 2_000.0, "cpu_pct": {"streams": 50.0, "kafka": 30.0}}
    assert cpu_us_per_question(step) == {"streams": 250.0, "kafka": 150.0, "total": 400.0}
    assert cpu_us_per_question({"throughput_qps": 0.0, "cpu_pct": {"x": 1.0}}) is None
    assert cpu_us_per_question(None) is None


def test_the_bound_adds_the_reasoners_cpu_to_the_pass_throughs() -> None:
    ceiling = {
        "max_throughput_qps": 40_000.0,
        "at_max": {"throughput_qps": 40_000.0, "cpu_pct": {"relay": 100.0, "kafka": 100.0}},
    }
    # the pass-through: 200 % of a core at 40,000 q/s = 50 us per question; the reasoner 150 us
    bound = reasoner_bound({"warm_qps": 6_000.0, "cpu_us_per_question": 150.0}, ceiling, cpus=2)
    assert bound is not None
    assert bound["bound_qps"] == pytest.approx(2e6 / 200.0)
    assert bound["fraction_of_ceiling"] == pytest.approx(0.25)
    assert "out of reach" in bound["text"]
    cheap = reasoner_bound({"warm_qps": 1e6, "cpu_us_per_question": 1.0}, ceiling, cpus=2)
    assert cheap is not None and cheap["fraction_of_ceiling"] > 0.5 and "out of reach" not in cheap["text"]


def test_no_bound_without_both_measurements() -> None:
    ceiling = {"max_throughput_qps": 40_000.0, "at_max": {"throughput_qps": 40_000.0, "cpu_pct": {"relay": 100.0}}}
    assert reasoner_bound({"error": "timed out"}, ceiling, cpus=2) is None
    assert reasoner_bound({"cpu_us_per_question": 80.0}, {}, cpus=2) is None


def test_other_systems_idle_processes_are_not_a_systems_cost() -> None:
    step = {
        "throughput_qps": 1_000.0,
        "cpu_pct": {"pipeline:streams": 40.0, "faust_take:faust_take": 2.0, "harness": 10.0, "kafka": 20.0},
    }
    assert cpu_us_per_question(step, "pipeline") == {
        "pipeline:streams": 400.0,
        "harness": 100.0,
        "kafka": 200.0,
        "total": 700.0,
    }
