"""Do the reasoner's caches pay in the serving pipeline? (reasoning/gnn/encode_cache.py,
reasoning/gnn/subgraph_cache.py)

One copy of (c), one fixed load (half of (c)'s maximum), the same arrivals in every run
(seeded), four runs; the workers restart between settings and load their model again:

1. `shipped`: the settings as shipped (encoding cache on and pre-filled with the training
   templates, subgraph cache as configured: off by default), qa_val questions drawn alike;
2. `popular`: the same workers, but a workload where some questions are popular (Zipf over
   each hop's questions, `ZIPF`), as real traffic repeats questions and qa_val does not;
3. `popular + subgraph cache`: that workload with the subgraph cache on (`SUBGRAPH_ON`);
4. `no encode cache`: qa_val drawn alike, encoding cache off (capacity 0: every question's
   entity-masked text goes through MiniLM).

Per run: end-to-end p50/p99 and answered q/s (the driver), each cache's hit rate (the
workers' status), and the reasoner's own milliseconds per question, in all and in the two
stages the caches short-cut (encode, subgraph), from the workers' call logs
(harness.bench.calls): end-to-end latency on this shared 2-core machine moves more between
runs than a cache that saves a millisecond per question, the stage times do not. A stage's
time per question also falls as calls grow (its fixed cost is shared), so the mean call
size is given beside it: a slower run queues more questions into each call.
"""

from __future__ import annotations

import orjson

from harness.bench.experiments.pipeline import Context, Running, isolated_pipeline
from harness.bench.experiments.reference import reference_rate
from harness.bench.workload import Workload

LOAD = 0.5  # share of (c)'s maximum: every run should hold the SLO, so differences are the caches'
ZIPF = 1.0  # popularity exponent of the `popular` workload
SUBGRAPH_ON = 10_000  # subgraph cache entries in run 3 (bounded in bytes as well, see SubgraphCache)
SEED = 43


async def run(ctx: Context) -> dict:
    seconds = 3 * ctx.step_s
    alike, popular = ctx.workload(), ctx.workload(zipf=ZIPF)
    subgraph_base = ctx.base.subgraph_cache_size
    async with isolated_pipeline(ctx, "caches", {}, alike) as pipe:
        rate, source = await reference_rate(ctx, pipe)
        rate *= LOAD
        out: dict = {
            "offered_qps": round(rate, 1),
            "reference_source": source,
            "seconds": seconds,
            "zipf": ZIPF,
            "startup_s": pipe.startup_s,
            "runs": [],
            "popular_repeat_share": repeat_share(ctx.workload(zipf=ZIPF), int(rate * seconds)),
        }
        plan = [
            ("shipped", alike, None),
            ("popular", popular, None),
            ("popular + subgraph cache", popular, {"subgraph_cache_size": SUBGRAPH_ON}),
            ("no encode cache", alike, {"subgraph_cache_size": subgraph_base, "encode_cache_size": 0}),
        ]
        for name, workload, update in plan:
            if update is not None:
                pipe.system.restart_workers_with(update)
                await pipe.restarted(ctx.ready_timeout_s)
            pipe.driver.workload = workload
            await pipe.warm_up(0.3 * rate)
            measured = await _measure(pipe, rate, seconds, ctx.slo_ms)
            current = pipe.system.settings
            out["runs"].append(
                {
                    "name": name,
                    "workload": "popular (zipf)" if workload is popular else "qa_val alike",
                    "encode_cache_size": current.encode_cache_size,
                    "subgraph_cache_size": current.subgraph_cache_size,
                    **measured,
                }
            )
    return out


async def _measure(pipe: Running, rate: float, seconds: float, slo_ms: float) -> dict:
    seen = await pipe.measure(rate, seconds, slo_ms, SEED, "caches")
    return {**seen.latency(), "cache_hit_rates": seen.cache_hit_rates, **reasoner_ms_per_question(seen.calls)}


def reasoner_ms_per_question(calls: dict) -> dict:
    """The reasoner's milliseconds per answered question: in all (its own `total` timing when
    it keeps one, else the logged call times) and per stage the caches short-cut."""
    questions = sum(c["size"] for c in calls["calls"])
    if not questions:
        return {"questions": 0, "call_size_mean": None, "reasoner_ms_per_question": None, "stage_ms_per_question": {}}
    stages = calls.get("stages_ms") or {}
    total = stages.get("total", sum(c["ms"] for c in calls["calls"]))
    return {
        "questions": questions,
        "call_size_mean": round(questions / len(calls["calls"]), 2),
        "reasoner_ms_per_question": round(total / questions, 3),
        "stage_ms_per_question": {
            k: round(stages[k] / questions, 3) for k in ("encode", "subgraph", "gnn") if k in stages
        },
    }


def repeat_share(workload: Workload, draws: int) -> float:
    """Share of `draws` questions from `workload` that repeat an earlier one (what a cache
    keyed on the whole question could hit at most)."""
    seen: set[str] = set()
    repeats = 0
    for _ in range(draws):
        text = orjson.loads(workload.record().value)["text"]
        repeats += text in seen
        seen.add(text)
    return round(repeats / max(1, draws), 3)
