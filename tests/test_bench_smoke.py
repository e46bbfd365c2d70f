"""A very short run of the serving benchmark harness against the real Kafka and PostgreSQL.

The instant `echo` reasoner stands in for the model (the harness is under test here, not
the model), so every system starts in seconds; the figures of a smoke run mean nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.bench import main
from harness.bench.search import SearchPlan, find_max
from schemas.settings import Settings

KEYS = (
    "ratio_vs_per_message",
    "ratio_vs_faust_take",
    "fraction_of_ceiling",
    "max_throughput_qps",
    "p99_ms_at_70pct_load",
    "systems",
    "targets",
    "uptime_before",
)


async def test_search_brackets_then_bisects() -> None:
    """Up while sustained, then bisect between the last sustained and the first failed rate."""
    capacity = 300.0

    async def step(rate: float) -> dict:
        return {"offered_qps": rate, "throughput_qps": min(rate, capacity), "ok": rate <= capacity}

    best, steps = await find_max(step, 100.0, SearchPlan(max_steps=8, refine=2), lambda: True)
    rates = [s["offered_qps"] for s in steps]
    assert rates[:3] == [100.0, 150.0, 225.0] and rates[3] > capacity
    assert 225.0 <= best <= capacity and len(steps) == 6


@pytest.mark.timeout(240)
def test_bench_quick_smoke(services: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "--json",
        "--quick",
        "--reasoner",
        "echo",
        "--duration-s",
        "1.5",
        "--max-steps",
        "2",
        "--windows",
        "",
        "--budget-s",
        "60",
        "--experiments",
        "",
        "--out",
        str(tmp_path),
    ]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    for key in KEYS:
        assert key in result, key
    assert set(result["systems"]) == {"ceiling", "per_message", "faust_take", "pipeline"}
    for name, system in result["systems"].items():
        assert "error" not in system, (name, system.get("error"))
        assert any(step["throughput_qps"] > 0 for step in system["steps"]), name
    assert (tmp_path / "bench.json").exists() and (tmp_path / "report.md").exists()
    assert (tmp_path / "latency_vs_load.png").exists()
