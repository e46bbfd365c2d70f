"""The fault suite in its short form: a worker SIGKILLed, the stream processor SIGKILLed and
a rebalance (a worker added, one removed), each while 300 questions flow, as consecutive
phases of one pipeline (`autoglm chaos --shared`): nothing lost, each question's row won
by exactly one claim, and each question answered exactly once on the topic for a
read_committed consumer (deliveries are counted per question id: rows cannot show a double,
`answers.question_id` is their primary key).

The full form is `autoglm chaos` (5,000 questions per scenario, every scenario, each on its
own pipeline); see harness/chaos/.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from harness.chaos.driver import Plan, run_all
from harness.chaos.report import as_table, machine
from harness.chaos.scenarios import Options
from schemas.settings import Settings

N = 300


@pytest.mark.timeout(900)
def test_kills_and_rebalance_lose_nothing_and_deliver_each_answer_once(services: Settings, tmp_path: Path) -> None:
    plan = Plan(
        n=N,
        rate=20.0,
        drain_s=180.0,
        partitions=3,
        overload_s=0.0,
        opts=Options(kills=1, join_timeout_s=240.0),
        log_dir=tmp_path,
    )
    results = asyncio.run(run_all(["worker_sigkill", "streams_sigkill", "rebalance"], plan, shared=True))
    print(as_table(results, {"machine": machine()}), file=sys.stderr)

    assert [r.name for r in results] == ["worker_sigkill", "streams_sigkill", "rebalance"]
    for r in results:
        evidence = f"{r.name}: {r.to_json()}; logs in {tmp_path}"
        assert r.tally.sent == N, evidence
        assert r.faults, evidence  # the fault was injected ...
        assert not [f.label for f in r.faults if f.label.endswith(" failed")], evidence  # ... and did not fail
        assert r.tally.lost == 0, evidence
        assert r.tally.duplicate_claims == 0, evidence  # no question's row won twice
        if r.name != "worker_sigkill":  # a SIGKILLed worker's last claim may go unlogged
            assert r.tally.missing_claims == 0, evidence
        assert r.tally.duplicates_on_topic == 0, evidence  # read_committed: per-partition producers fence zombies
