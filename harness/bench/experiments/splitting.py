"""Does cost-aware splitting (workers/splitting.py, `max_batch_cost`) change p99 on the
heaviest questions?

Only 3-hop questions, at one fixed load, twice:
* off: `max_batch_cost` so high that no poll is ever split; the worker still asks the
  reasoner for its cost estimates, so both runs pay for estimating and differ only in
  the splitting itself, and the estimates logged here size the budget of the second run;
* on: the budget set to the median estimated cost of the first run's polls (`BUDGET_Q`),
  so the heavier half of the polls is answered in two or more calls and the lighter half
  in one (the workers restart to read it, and load their model again). A budget of a few
  questions instead turns every poll into dozens of calls: at this load the fixed cost
  per call then outgrows the machine and the run aborts (measured: 24 calls per poll).
Reported per run with the same budget: the largest call's cost and milliseconds, and how
many calls of more than one question went over the budget (none when splitting works).
Reasoner call sizes come from the workers' call logs (harness.bench.calls), because the
answers of one poll share its inference time whatever the chunks were. When the
reasoner has no `estimate_costs`, splitting cannot happen: the experiment says so and
skips the second run.
"""

from __future__ import annotations

from harness.bench.experiments.pipeline import Context, Running, isolated_pipeline
from harness.bench.experiments.reference import reference_rate
from harness.bench.stats import percentile, size_summary

NEVER = 1e30  # a budget no poll reaches: costs are estimated, nothing is split
BUDGET_Q = 0.5  # the budget is this quantile of the 'off' run's per-poll costs
LOAD = 0.5  # share of (c)'s maximum on the mixed workload: 3-hop questions cost more; at 0.8 both runs drowned
SEED = 41


async def run(ctx: Context) -> dict:
    seconds = 3 * ctx.step_s
    workload = ctx.workload(hops=(3,))
    async with isolated_pipeline(ctx, "splitting", {"max_batch_cost": NEVER}, workload) as pipe:
        rate, source = await reference_rate(ctx, pipe)
        rate *= LOAD
        out: dict = {
            "hops": [3],
            "offered_qps": round(rate, 1),
            "reference_source": source,
            "seconds": seconds,
            "startup_s": pipe.startup_s,
        }
        await pipe.warm_up(0.3 * rate)
        off = await _measure(pipe, rate, seconds, ctx.slo_ms)
        costs, poll_costs, off_calls = off.pop("_costs"), off.pop("_call_costs"), off.pop("_calls")
        out["off"] = {"max_batch_cost": None, **off}
        if not off["estimate_costs"]:
            out["active"] = False
            out["note"] = (
                "splitting inactive: the reasoner has no estimate_costs, so the worker never splits "
                "(max_batch_cost has no effect); the 'on' run was skipped"
            )
            return out
        if not poll_costs:
            out["active"] = False
            out["note"] = "no cost estimates were logged in the 'off' run; the 'on' run was skipped"
            return out
        budget = max(1.0, percentile(poll_costs, BUDGET_Q))  # 0 would switch splitting off
        out["budget_rule"] = f"p{round(100 * BUDGET_Q)} of the 'off' run's per-poll costs"
        out["question_cost"] = {"p50": percentile(costs, 0.5), "p90": percentile(costs, 0.9), "max": max(costs)}
        out["off"]["over_budget"] = _over_budget(off_calls, budget)
        pipe.system.restart_workers_with({"max_batch_cost": budget})
        out["restart_s"] = round(await pipe.restarted(ctx.ready_timeout_s), 1)
        await pipe.warm_up(0.3 * rate)
        on = await _measure(pipe, rate, seconds, ctx.slo_ms)
        on.pop("_costs")
        on.pop("_call_costs")
        on["over_budget"] = _over_budget(on.pop("_calls"), budget)
        out["on"] = {"max_batch_cost": budget, **on}
        out["active"] = (on["calls_per_estimate"] or 0) > 1.0
        if not out["active"]:
            out["note"] = f"no poll exceeded the budget of {budget:,.0f}: nothing was split at this load" + (
                " (polls carried about one question each; a higher --experiment-rate makes them bigger)"
                if (off["reasoner_calls"] or {}).get("mean", 1.0) < 2
                else ""
            )
    return out


async def _measure(pipe: Running, rate: float, seconds: float, slo_ms: float) -> dict:
    seen = await pipe.measure(rate, seconds, slo_ms, SEED, "splitting")
    calls, step = seen.calls, seen.step
    sizes = [c["size"] for c in calls["calls"]]
    costs = [c["cost"] for c in calls["calls"] if c.get("cost") is not None]
    return {
        **seen.latency(),
        "poll_size": step["call_size"],
        "reasoner_calls": size_summary(sizes, None),
        "reasoner_call_ms": size_summary([round(c["ms"]) for c in calls["calls"]], None),
        "reasoner_call_cost_p50": percentile(costs, 0.5) if costs else None,
        "calls_per_estimate": round(len(sizes) / calls["estimates"], 2) if calls["estimates"] else None,
        "estimate_costs": calls["estimate_costs"],
        "cache_hit_rates": seen.cache_hit_rates,
        "reasoner_call_cost_max": max(costs) if costs else None,
        "_costs": calls["costs"],
        "_call_costs": costs,
        "_calls": calls["calls"],
    }


def _over_budget(calls: list[dict], budget: float) -> dict:
    """How many calls of more than one question cost more than `budget` (a single question
    over it is a chunk of its own: splitting cannot help it)."""
    over = [c for c in calls if c.get("cost") is not None and c["size"] > 1 and c["cost"] > budget]
    return {"calls": len(over), "of": len(calls)}
