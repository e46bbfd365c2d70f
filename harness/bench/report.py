"""The run's result as one JSON object, a Markdown table and PNG plots in bench-results/."""

from __future__ import annotations

from pathlib import Path

import orjson

from harness.bench.experiments import report as experiments_report
from harness.bench.systems import LABELS

TARGETS = {"ratio_vs_per_message": 5.0, "ratio_vs_faust_take": 1.5, "fraction_of_ceiling": 0.5}
P99_AT_70PCT_TARGET_MS = 150.0


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def summarise(raw: dict, config: dict) -> dict:
    """Headline figures on top of the raw per-system results."""
    systems = raw["systems"]
    top = {name: s.get("max_throughput_qps") for name, s in systems.items()}
    c = top.get("pipeline")
    pipe = systems.get("pipeline", {})
    at70 = pipe.get("at_70pct") or {}
    out = {
        "max_throughput_qps": c,
        "ratio_vs_per_message": _ratio(c, top.get("per_message")),
        "ratio_vs_faust_take": _ratio(c, top.get("faust_take")),
        "fraction_of_ceiling": _ratio(c, top.get("ceiling")),
        "p99_ms_at_70pct_load": at70.get("p99_ms"),
        "load_at_70pct_qps": at70.get("offered_qps"),
        "max_throughput_by_system": top,
        "peak_throughput_by_system": {name: s.get("peak_throughput_qps") for name, s in systems.items()},
        "common_load": common_load(systems),
        "pipeline_limit": explain_limit(pipe, config.get("cpus") or 1),
        "reasoner_bound": reasoner_bound(
            raw.get("reasoner_alone") or {}, systems.get("ceiling") or {}, config.get("cpus") or 1
        ),
        "cpu_us_per_question": {name: cpu_us_per_question(s.get("at_max"), name) for name, s in systems.items()},
        "experiments_headline": experiments_report.headline(raw.get("experiments") or {}),
        "config": config,
        **raw,
    }
    out["targets"] = {
        **{f"{k} >= {v}": (out[k] >= v if out[k] is not None else None) for k, v in TARGETS.items()},
        f"p99_ms_at_70pct_load <= {P99_AT_70PCT_TARGET_MS:.0f}": (
            out["p99_ms_at_70pct_load"] <= P99_AT_70PCT_TARGET_MS if out["p99_ms_at_70pct_load"] is not None else None
        ),
    }
    return out


def common_load(systems: dict) -> dict | None:
    """p99 of every system at one offered load: the per-message baseline's maximum (the
    lowest of the model-serving systems, so every system can carry it)."""
    source = next((n for n in ("per_message", "faust_take") if systems.get(n, {}).get("max_throughput_qps")), None)
    if source is None:
        return None
    at_max = systems[source].get("at_max") or {}
    p99 = {source: at_max.get("p99_ms")}
    overloaded = []
    for name, s in systems.items():
        step = (s.get("at_common_loads") or {}).get(source)
        if step:
            p99[name] = step.get("p99_ms")
            if step.get("p99_ms") is None:
                overloaded.append(name)
    return {"offered_qps": at_max.get("offered_qps"), "source": source, "p99_ms": p99, "overloaded": overloaded}


def cpu_us_per_question(step: dict | None, system: str | None = None) -> dict[str, float] | None:
    """Microseconds of a core each measured process spent per answered question in a step
    (the harness, the broker and the database included): where a system's CPU goes, comparable across
    systems whatever their throughput. With `system`, the other systems' processes (idle
    while it is measured, rows `name:role`) are left out."""
    if not step or not step.get("cpu_pct") or not step.get("throughput_qps"):
        return None
    per = {
        role: round(1e4 * pct / step["throughput_qps"], 1)
        for role, pct in step["cpu_pct"].items()
        if system is None or ":" not in role or role.startswith(f"{system}:")
    }
    return {**per, "total": round(sum(per.values()), 1)}


def reasoner_bound(alone: dict, ceiling: dict, cpus: int) -> dict | None:
    """The most any system could answer here that moves questions through Kafka as cheaply
    as the pass-through at its maximum and runs this reasoner on them: the machine's cores divided
    by (the pass-through's CPU per question + the reasoner's alone), as a fraction of the
    ceiling. Below 0.5, half the ceiling is out of reach however cheap the plumbing."""
    relay = cpu_us_per_question(ceiling.get("at_max"), "ceiling")
    top = ceiling.get("max_throughput_qps")
    if not alone.get("cpu_us_per_question") or not relay or not top:
        return None
    reasoner_us = alone["cpu_us_per_question"]
    bound = cpus * 1e6 / (relay["total"] + reasoner_us)
    fraction = bound / top
    return {
        **alone,
        "reasoner_us_per_question": round(reasoner_us, 1),
        "relay_us_per_question": relay["total"],
        "bound_qps": round(bound, 1),
        "fraction_of_ceiling": round(fraction, 3),
        "text": (
            f"the reasoner alone (one process, no Kafka, no PostgreSQL, warm caches, mixed-hop batches of 100) "
            f"spends {reasoner_us:.0f} us of CPU per question ({alone['warm_qps']:,.0f} q/s) and the "
            f"pass-through at its maximum {relay['total']:.0f} us (harness and broker included), so a system "
            f"that relayed questions as cheaply as the pass-through and only ran this reasoner on them would "
            f"answer at most {cpus} cores / {relay['total'] + reasoner_us:.0f} us = {bound:,.0f} q/s, "
            f"{fraction:.2f} of the ceiling"
            + (
                ": with this reasoner at batches of 100, even plumbing as cheap as the pass-through's "
                "would leave half the ceiling out of reach on this machine"
                if fraction < 0.5
                else ""
            )
        ),
    }


def _contention(step: dict, cpus: int) -> str:
    """A note when no process of ours saturates a core while the machine is overloaded."""
    ours = max((v for k, v in (step.get("cpu_pct") or {}).items() if k not in ("kafka", "postgres")), default=0.0)
    load = (step.get("loadavg") or [0.0])[0]
    if ours < 60 and load > cpus:
        return (
            f" - but no process of ours used more than {ours:.0f}% of a core while the machine's load average "
            f"was {load:.1f} on {cpus} CPUs: other work on the machine starves it"
        )
    return ""


def explain_limit(pipe: dict, cpus: int) -> str | None:
    """What stops the pipeline at its maximum: which stage grows, which process saturates."""
    steps = [s for s in pipe.get("steps", []) if s.get("stages")]
    best = pipe.get("at_max")
    if best is None and steps:  # nothing sustained: explain the floor, the lowest load tried
        best = min(steps, key=lambda s: s["offered_qps"])
        where = (
            f"no load met the SLO; at the lowest load tried ({best['offered_qps']:.0f} q/s offered, "
            f"p99 {_fmt(best['p99_ms'])} ms)"
        )
    elif best is not None and best.get("stages"):
        where = f"at its maximum ({best['throughput_qps']:.0f} q/s)"
    else:
        return None
    over = [s for s in steps if not s["ok"] and s["offered_qps"] > best["offered_qps"]]
    worst = min(over, key=lambda s: s["offered_qps"]) if over and best.get("ok") else None
    e2e = sum(v["mean"] for v in best["stages"].values())
    parts = ", ".join(f"{k.removesuffix('_ms')} {v['mean']:.0f}" for k, v in best["stages"].items())
    text = f"{where} the mean {e2e:.0f} ms splits into {parts} ms"
    text += _cpu_text(best)
    batch, call = best.get("batch_size") or {}, best.get("call_size") or {}
    if batch.get("mean") is not None and batch["mean"] < 2:
        text += (
            f"; batches carry {batch['mean']:.2f} questions on average and reasoner calls "
            f"{call.get('mean') or 0:.2f} (each (service, user) cluster sees few questions per window), "
            f"so the window adds latency without much batching"
        )
    if worst is not None:
        grown = {k: worst["stages"][k]["mean"] - best["stages"][k]["mean"] for k in best["stages"]}
        stage = max(grown, key=grown.get)
        text += (
            f"; one step above ({worst['offered_qps']:.0f} q/s offered) {stage.removesuffix('_ms')} "
            f"grows by {grown[stage]:.0f} ms{_cpu_text(worst)}"
        )
        text += {
            "queue_ms": ": batches wait for a busy worker (its reasoning and delivery cycle)",
            "inference_ms": ": reasoner calls get slower (bigger calls or CPU contention)",
            "ingest_ms": ": the stream processor falls behind the questions topic",
            "batch_wait_ms": ": buffers wait longer to close",
            "deliver_ms": ": writing answers (database, produce, transaction) falls behind",
        }[stage]
        text += _contention(worst, cpus)
    elif not best.get("ok"):
        stage = max(best["stages"], key=lambda k: best["stages"][k]["mean"])
        cycle = best["stages"]["inference_ms"]["mean"] + best["stages"]["deliver_ms"]["mean"]
        text += (
            f"; the largest part is {stage.removesuffix('_ms')}"
            + {
                "queue_ms": (
                    f": a batch's trip through Kafka to the worker plus its wait for the worker's cycle in "
                    f"progress (reasoning, then database and Kafka transaction, about {cycle:.0f} ms, one after "
                    f"the other) before its own cycle starts"
                ),
                "inference_ms": ": the reasoner itself",
                "ingest_ms": ": the stream processor falls behind the questions topic",
                "batch_wait_ms": ": the batch window",
                "deliver_ms": ": writing answers (database, produce, transaction) and reading them back",
            }[stage]
        )
        text += _contention(best, cpus)
    return text


def _cpu_text(step: dict) -> str:
    cpu = step.get("cpu_pct") or {}
    if not cpu:
        return ""
    return (
        " (CPU % of a core: " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1])) + ")"
    )


def _fmt(value: object, suffix: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        digits = 2 if abs(value) < 10 else 1 if abs(value) < 100 else 0
        return f"{value:,.{digits}f}{suffix}"
    return f"{value}{suffix}"


def markdown(result: dict) -> str:
    systems = result["systems"]
    common = result.get("common_load") or {}
    c = result.get("max_throughput_qps")
    load = _fmt(common.get("offered_qps"))
    lines = [
        f"# Serving benchmark ({result['config']['mode']}, reasoner `{result['config']['reasoner']}`)",
        "",
        f"Machine: {result['config']['cpus']} CPUs; before: `{result['uptime_before']}`; after: `{result['uptime_after']}`.",
        f"Workload: {_workload_text(result['config'])}; open-loop Poisson arrivals; steps of "
        f"{result['config']['step_s']:.0f} s; SLO p99 <= {result['config']['slo_ms']:.0f} ms (unanswered = late).",
        "",
        f"| system | max q/s at p99 <= {result['config']['slo_ms']:.0f} ms | peak q/s (any latency) | p50 / p95 / p99 at max (ms) "
        f"| p99 at {load} q/s (ms) | batch mean (fill) | reasoner call mean | lag max | load avg | (c) / system |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in systems.items():
        best = s.get("at_max") or {}
        batch = best.get("batch_size") or {}
        call = best.get("call_size") or {}
        lag = max((v["max"] for v in (best.get("lag") or {}).values()), default=None)
        p99_common = (common.get("p99_ms") or {}).get(name)
        if name in (common.get("overloaded") or []):
            p99_common = "overloaded"
        error = s.get("error")
        lines.append(
            f"| {LABELS.get(name, name)} | {_fmt(s.get('max_throughput_qps')) if not error else 'failed: ' + error[:60]} "
            f"| {_fmt(s.get('peak_throughput_qps'))} "
            f"| {_fmt(best.get('p50_ms'))} / {_fmt(best.get('p95_ms'))} / {_fmt(best.get('p99_ms'))} "
            f"| {_fmt(p99_common)} "
            f"| {_fmt(batch.get('mean'))} ({_fmt(batch.get('fill'))}) | {_fmt(call.get('mean'))} | {_fmt(lag)} "
            f"| {_fmt((best.get('loadavg') or [None])[0])} "
            f"| {_fmt(_ratio(c, s.get('max_throughput_qps')))} |"
        )
    lines += [
        "",
        "Headline: "
        + ", ".join(
            f"{k} = {_fmt(result.get(k))}"
            for k in (
                "max_throughput_qps",
                "ratio_vs_per_message",
                "ratio_vs_faust_take",
                "fraction_of_ceiling",
                "p99_ms_at_70pct_load",
            )
        )
        + ".",
    ]
    lines += ["", "Targets: " + "; ".join(f"{k}: {_verdict(v)}" for k, v in result["targets"].items()) + "."]
    lines += _stage_table(systems.get("pipeline", {}))
    if result.get("pipeline_limit"):
        lines += ["", f"What limits (c): {result['pipeline_limit']}."]
    lines += _cpu_table(result.get("cpu_us_per_question") or {})
    if result.get("reasoner_bound"):
        lines += ["", f"Bound on the fraction of the ceiling: {result['reasoner_bound']['text']}."]
    lines += _window_table(systems.get("pipeline", {}))
    lines += experiments_report.markdown(result.get("experiments") or {})
    lines += [
        "",
        "Notes: (c) also deduplicates, runs the safety gate, writes every answer to PostgreSQL and "
        "produces answers in Kafka transactions; (a) and (b) only consume, answer and produce. Quotas are off "
        "in all systems. Latency runs from the intended produce time to the harness consuming the answer. "
        "A maximum counts only when a majority of 3 steps at that rate hold the SLO (the search's own step "
        "is the first; otherwise 15 % lower is tried); p99 figures at a fixed load are the median of 3 steps; "
        "between phases the harness waits until the system is idle.",
    ]
    return "\n".join(lines) + "\n"


def _cpu_table(per_system: dict) -> list[str]:
    """CPU per answered question at each system's maximum, by process."""
    rows = [(name, cpu) for name, cpu in per_system.items() if cpu]
    if not rows:
        return []
    lines = [
        "",
        "CPU per answered question at each system's maximum (us of a core; harness, broker and database included):",
        "",
        "| system | total | by process |",
        "|---|---:|---|",
    ]
    for name, cpu in rows:
        parts = ", ".join(f"{role} {us:,.0f}" for role, us in cpu.items() if role != "total")
        lines.append(f"| {LABELS.get(name, name)} | {cpu['total']:,.0f} | {parts} |")
    return lines


def _workload_text(config: dict) -> str:
    w = config["workload"]
    return (
        f"{w['source']}, {w['users']} users x {w['services']} services"
        f"{', raw text' if w['raw_text'] else ', entities bracketed'}"
    )


def _verdict(value: object) -> str:
    return {True: "met", False: "missed", None: "not measured"}[value]  # type: ignore[index]


def _stage_table(pipe: dict) -> list[str]:
    rows = [("at max", pipe.get("at_max")), ("at 70% of max", pipe.get("at_70pct"))]
    staged = [s for s in pipe.get("steps", []) if s.get("stages")]
    if not pipe.get("at_max") and staged:
        rows.append(("lowest load tried (SLO missed)", min(staged, key=lambda s: s["offered_qps"])))
    rows = [(k, s) for k, s in rows if s and s.get("stages")]
    if not rows:
        return []
    stages = list(rows[0][1]["stages"])
    out = [
        "",
        "Time per stage in (c), mean / p99 ms:",
        "",
        "| load | q/s | " + " | ".join(s.removesuffix("_ms") for s in stages) + " | end-to-end p99 |",
        "|---|---:|" + "---:|" * (len(stages) + 1),
    ]
    for name, step in rows:
        cells = " | ".join(f"{step['stages'][s]['mean']:.0f} / {_fmt(step['stages'][s]['p99'])}" for s in stages)
        out.append(f"| {name} | {_fmt(step['throughput_qps'])} | {cells} | {_fmt(step['p99_ms'])} |")
    return out


def _window_table(pipe: dict) -> list[str]:
    sweep = pipe.get("window_sweep")
    if not sweep:
        return []
    rate = next((w["at_overload"]["offered_qps"] for w in sweep if w.get("at_overload")), None)
    out = [
        "",
        "Batch window sweep for (c):",
        "",
        f"| window ms | max q/s at SLO | q/s at {_fmt(rate)} q/s offered | batch mean there | reasoner call mean there |",
        "|---:|---:|---:|---:|---:|",
    ]
    for w in sweep:
        over = w.get("at_overload") or {}
        out.append(
            f"| {w['window_ms']} | {_fmt(w.get('max_throughput_qps'))} | {_fmt(w.get('overload_throughput_qps'))} "
            f"| {_fmt((over.get('batch_size') or {}).get('mean'))} | {_fmt((over.get('call_size') or {}).get('mean'))} |"
        )
    return out


def plots(result: dict, out_dir: Path) -> list[str]:
    """latency_vs_load.png and throughput_vs_window.png; skipped without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = []
    slo = result["config"]["slo_ms"]
    cap = 10 * slo  # overloaded steps (p99 unknown or huge) are drawn here
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, s in result["systems"].items():
        steps = sorted((st for st in s.get("steps", []) if st["label"] == "sweep"), key=lambda st: st["offered_qps"])
        if not steps:
            continue
        x = [st["offered_qps"] for st in steps]
        (line,) = ax.plot(x, [min(cap, st["p99_ms"] or cap) for st in steps], marker="o", label=f"{LABELS[name]} p99")
        ax.plot(x, [min(cap, st["p50_ms"] or cap) for st in steps], ls="--", color=line.get_color(), alpha=0.6)
    ax.axhline(slo, color="grey", ls=":", label=f"SLO {slo:.0f} ms")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="offered load (questions/s)",
        ylabel="latency (ms), p99 solid, p50 dashed",
        title=f"Latency vs offered load (overloaded steps drawn at {cap:.0f} ms)",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out_dir / "latency_vs_load.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(str(path))
    sweep = [w for w in (result["systems"].get("pipeline", {}).get("window_sweep") or []) if "error" not in w]
    if sweep:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        xs = [w["window_ms"] for w in sweep]
        rate = next((w["at_overload"]["offered_qps"] for w in sweep if w.get("at_overload")), None)
        ax.plot(xs, [w["max_throughput_qps"] or 0 for w in sweep], marker="o", label=f"max at p99 <= {slo:.0f} ms")
        ax.plot(
            xs,
            [w.get("overload_throughput_qps") or 0 for w in sweep],
            marker="s",
            ls="--",
            label=f"at {rate or 0:.0f} q/s offered (overload)",
        )
        ax.set(xlabel="batch window (ms)", ylabel="throughput (questions/s)", title="(c) throughput vs batch window")
        ax.legend()
        fig.tight_layout()
        path = out_dir / "throughput_vs_window.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(str(path))
    return written + experiments_report.plots(result.get("experiments") or {}, out_dir, plt)


def write(result: dict, out_dir: Path) -> dict:
    """Write bench.json, report.md and the plots; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"json": str(out_dir / "bench.json"), "markdown": str(out_dir / "report.md")}
    files["plots"] = plots(result, out_dir)
    result["files"] = files
    (out_dir / "report.md").write_text(markdown(result))
    (out_dir / "bench.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return files
