"""The experiments' headline figures, their Markdown sections and the controller plot."""

from __future__ import annotations

from pathlib import Path


def _fmt(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{2 if abs(value) < 10 else 1 if abs(value) < 100 else 0}f}"
    return str(value)


def _hit_rates(rates: dict | None) -> str:
    if not rates:
        return "n/a (no worker publishes `caches`)"
    return ", ".join(
        f"{name} {_fmt(r['hit_rate'])} ({r['hits']}/{r['hits'] + r['misses']})" for name, r in rates.items()
    )


def headline(experiments: dict) -> dict:
    """A few figures per experiment for the top of bench.json and the --json object."""
    out: dict = {}
    c = experiments.get("controller") or {}
    if "step" in c:
        out["controller"] = {
            "convergence_s": c["step"]["convergence_s"],
            "target_p99_ms": c["target_p99_ms"],
            "mixed_p99_ms": {
                "adaptive": c["mixed_adaptive"]["p99_ms"],
                "fixed": (c.get("mixed_fixed") or {}).get("p99_ms"),
            },
            "mixed_p50_ms": {
                "adaptive": c["mixed_adaptive"]["p50_ms"],
                "fixed": (c.get("mixed_fixed") or {}).get("p50_ms"),
            },
            "best_fixed_linger_ms": (c.get("mixed_fixed") or {}).get("linger_ms"),
            "mixed_throughput_qps": {
                "adaptive": c["mixed_adaptive"]["throughput_qps"],
                "fixed": (c.get("mixed_fixed") or {}).get("throughput_qps"),
            },
        }
    s = experiments.get("skew") or {}
    if "routing_on" in s:
        out["skew"] = {
            k: {
                "worker_max_over_mean": s[k]["max_over_mean"]["worker_questions"],
                "p99_ms": s[k]["p99_ms"],
                "throughput_qps": s[k]["throughput_qps"],
            }
            for k in ("routing_off", "routing_on")
        }
    sp = experiments.get("splitting") or {}
    if "off" in sp:
        out["splitting"] = {
            "active": sp.get("active"),
            "note": sp.get("note"),
            "p99_ms": {k: (sp.get(k) or {}).get("p99_ms") for k in ("off", "on")},
            "reasoner_call_mean": {
                k: ((sp.get(k) or {}).get("reasoner_calls") or {}).get("mean") for k in ("off", "on")
            },
            "largest_call_ms": {k: ((sp.get(k) or {}).get("reasoner_call_ms") or {}).get("max") for k in ("off", "on")},
            "calls_over_budget": {k: ((sp.get(k) or {}).get("over_budget") or {}).get("calls") for k in ("off", "on")},
        }
    ca = experiments.get("caches") or {}
    if ca.get("runs"):
        out["caches"] = {
            r["name"]: {
                "p99_ms": r["p99_ms"],
                "reasoner_ms_per_question": r["reasoner_ms_per_question"],
                "hit_rates": {k: v["hit_rate"] for k, v in (r.get("cache_hit_rates") or {}).items()},
            }
            for r in ca["runs"]
        }
    co = experiments.get("compression") or {}
    if co.get("runs"):
        out["compression"] = {
            r["codec"]: {
                "bytes_per_question": r["bytes_per_question"],
                "cpu_us_per_question": r["cpu_us_per_question"],
                "p99_ms": r["p99_ms"],
            }
            for r in co["runs"]
        }
    for name, result in experiments.items():
        if "error" in result:
            out[name] = {"error": result["error"]}
    return out


def markdown(experiments: dict) -> list[str]:
    lines: list[str] = []
    sections = (
        ("controller", _controller),
        ("skew", _skew),
        ("splitting", _splitting),
        ("caches", _caches),
        ("compression", _compression),
    )
    for name, section in sections:
        result = experiments.get(name)
        if result is None:
            continue
        lines += ["", f"### Experiment: {name} ({_fmt(result.get('elapsed_s'))} s)", ""]
        lines += [f"Failed: {result['error']}"] if "error" in result else section(result)
    return (["", "## Experiments"] + lines) if lines else []


def _controller(c: dict) -> list[str]:
    step, ada, fixed = c["step"], c["mixed_adaptive"], c.get("mixed_fixed") or {}
    conv = step["convergence_s"]
    lines = [
        f"Adaptive batching, p99 target {c['target_p99_ms']:.0f} ms; load sized by {c['reference_source']} "
        f"({_fmt(c['reference_qps'])} q/s). Step {step['low_qps']} -> {step['high_qps']} q/s at "
        f"t = {step['step_at_s']:.0f} s: rolling 2-s p99 "
        + (f"stays under target {conv:.1f} s after the step." if conv is not None else "did not stay under target."),
        f"Before the step p99 {_fmt(step['before_step']['p99_ms'])} ms; after it p99 {_fmt(step['after_step']['p99_ms'])} ms "
        f"at {_fmt(step['after_step']['throughput_qps'])} q/s. Cache hit rates: {_hit_rates(c.get('cache_hit_rates'))}.",
        "",
        "| mixed load (low/high phases) | p50 ms | p99 ms | low phases p50 / p99 | high phases p50 / p99 "
        "| q/s answered | unanswered |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| adaptive (stream and worker controllers) | {_fmt(ada['p50_ms'])} | {_fmt(ada['p99_ms'])} | {_phases(ada)} "
        f"| {_fmt(ada['throughput_qps'])} | {ada['sent'] - ada['answered']} |",
    ]
    for run in c.get("mixed_fixed_runs") or ([fixed] if fixed else []):
        best = " **best fixed**" if run == fixed and len(c.get("mixed_fixed_runs") or []) > 1 else ""
        linger = f", worker linger {run['linger_ms']:.0f} ms" if "linger_ms" in run else ""
        lines.append(
            f"| fixed window {run['window_ms']} ms, size {run['max_size']}{linger} ({run['source']}){best} "
            f"| {_fmt(run['p50_ms'])} | {_fmt(run['p99_ms'])} | {_phases(run)} | {_fmt(run['throughput_qps'])} "
            f"| {run['sent'] - run['answered']} |"
        )
    return lines


def _phases(run: dict) -> str:
    """'low p50 / p99 | high p50 / p99' of a mixed run (n/a before runs kept them)."""
    by = run.get("by_phase") or {}
    return " | ".join(
        f"{_fmt((by.get(k) or {}).get('p50_ms'))} / {_fmt((by.get(k) or {}).get('p99_ms'))}" for k in ("low", "high")
    )


def _skew(s: dict) -> list[str]:
    lines = [
        f"{s['hot_share']:.0%} of the questions from one user of one service, {s['workers']} workers, "
        f"{_fmt(s['offered_qps'])} q/s offered for {s['seconds']:.0f} s each ({s['reference_source']}).",
        "",
        "| routing | max/mean questions per worker | per partition (batches / questions) | p99 ms | q/s | spilled |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, label in (("routing_off", "key hash (off)"), ("routing_on", "load-aware (on)")):
        r = s.get(key)
        if not r:
            continue
        m = r["max_over_mean"]
        lines.append(
            f"| {label} | {_fmt(m['worker_questions'])} | {_fmt(m['partition_batches'])} / "
            f"{_fmt(m['partition_questions'])} | {_fmt(r['p99_ms'])} | {_fmt(r['throughput_qps'])} "
            f"| {_fmt((r.get('router') or {}).get('spilled'))} |"
        )
    for key in ("routing_off", "routing_on"):
        if s.get(key):
            lines.append(
                f"\n{key}: questions per worker {s[key]['per_worker']}; cache hit rates: "
                f"{_hit_rates(s[key].get('cache_hit_rates'))}."
            )
    return lines


def _splitting(sp: dict) -> list[str]:
    lines = [
        f"3-hop questions only at {_fmt(sp['offered_qps'])} q/s for {sp['seconds']:.0f} s each "
        f"({sp['reference_source']})."
    ]
    if sp.get("note"):
        lines.append(f"Note: {sp['note']}.")
    if sp.get("budget_rule"):
        lines.append(f"Budget: {sp['budget_rule']}; calls over it count calls of more than one question.")
    lines += [
        "",
        "| max_batch_cost | p50 ms | p99 ms | q/s | reasoner call mean / max | calls per poll "
        "| largest call: cost, ms | calls over budget | cache hit rates |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for key in ("off", "on"):
        r = sp.get(key)
        if not r:
            continue
        calls = r.get("reasoner_calls") or {}
        budget = "never splits" if r["max_batch_cost"] is None else f"{r['max_batch_cost']:,.0f}"
        lines.append(
            f"| {key}: {budget} | {_fmt(r['p50_ms'])} | {_fmt(r['p99_ms'])} | {_fmt(r['throughput_qps'])} "
            f"| {_fmt(calls.get('mean'))} / {_fmt(calls.get('max'))} | {_fmt(r['calls_per_estimate'])} "
            f"| {_fmt(r.get('reasoner_call_cost_max'))}, {_fmt((r.get('reasoner_call_ms') or {}).get('max'))} "
            f"| {_over(r.get('over_budget'))} | {_hit_rates(r.get('cache_hit_rates'))} |"
        )
    return lines


def _over(over: dict | None) -> str:
    return f"{over['calls']} of {over['of']}" if over else "–"


def _caches(ca: dict) -> list[str]:
    lines = [
        f"{_fmt(ca['offered_qps'])} q/s offered for {ca['seconds']:.0f} s per run ({ca['reference_source']}), "
        f"the same arrivals each run; 'popular': Zipf {ca['zipf']} over each hop's questions "
        f"({_fmt(ca['popular_repeat_share'])} of a run's questions repeat an earlier one). Reasoner ms per "
        "question from the workers' call logs (an estimate's early stages included).",
        "",
        "| run | encode cache | subgraph cache | p50 ms | p99 ms | q/s | questions per call "
        "| reasoner ms/question (encode, subgraph) | hit rates |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in ca["runs"]:
        st = r.get("stage_ms_per_question") or {}
        lines.append(
            f"| {r['name']} | {r['encode_cache_size']:,} | {r['subgraph_cache_size']:,} | {_fmt(r['p50_ms'])} "
            f"| {_fmt(r['p99_ms'])} | {_fmt(r['throughput_qps'])}{' (aborted)' if r['aborted'] else ''} "
            f"| {_fmt(r['call_size_mean'])} | {_fmt(r['reasoner_ms_per_question'])} ({_fmt(st.get('encode'))}, {_fmt(st.get('subgraph'))}) "
            f"| {_hit_rates(r.get('cache_hit_rates'))} |"
        )
    return lines


def _compression(co: dict) -> list[str]:
    topics = ("questions", "batches", "answers")
    lines = [
        f"{_fmt(co['offered_qps'])} q/s offered for {co['seconds']:.0f} s per codec ({co['reference_source']}), "
        "the same arrivals each run, one fresh copy of (c) per codec (every producer, the load driver's "
        "included, writes with it). Bytes: growth of each topic's log segments over the step per question "
        "sent. CPU: microseconds per answered question (worker: with its reasoner child; driver: the client).",
        "",
        "| codec | bytes/question questions | batches | answers | total | CPU µs/q streams | worker "
        "| driver | broker | total | p50 ms | p99 ms | q/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in co["runs"]:
        b, c = r.get("bytes_per_question") or {}, r.get("cpu_us_per_question") or {}
        worker = sum(v for k, v in c.items() if k.startswith("worker")) if c else None
        lines.append(
            f"| {r['codec']} | {' | '.join(_fmt(b.get(t)) for t in (*topics, 'total'))} "
            f"| {_fmt(c.get('streams'))} | {_fmt(worker)} | {_fmt(c.get('harness'))} | {_fmt(c.get('kafka'))} "
            f"| {_fmt(c.get('total'))} | {_fmt(r['p50_ms'])} | {_fmt(r['p99_ms'])} "
            f"| {_fmt(r['throughput_qps'])}{' (aborted)' if r['aborted'] else ''} |"
        )
    lines.append("")
    lines += [f"Stored batches, {r['codec']} run: {r['stored_batches']}." for r in co["runs"]]
    cost = co.get("codec_cost") or {}
    if cost.get("codecs"):
        lines += [
            "",
            f"The codecs alone, on the `none` run's stored batches ({cost['questions']} questions; "
            "aiokafka's codec functions, best of 3): records' size after compression, and µs per question "
            "to compress / to decompress.",
            "",
            "| codec | questions | batches | answers |",
            "|---|---:|---:|---:|",
        ]
        for name, per in cost["codecs"].items():
            cells = [
                f"{_fmt(per[t]['size_after'])}, {_fmt(per[t]['compress_us_per_question'])} / "
                f"{_fmt(per[t]['decompress_us_per_question'])}"
                for t in topics
            ]
            lines.append(f"| {name} | {' | '.join(cells)} |")
    return lines


def plots(experiments: dict, out_dir: Path, plt: object) -> list[str]:
    """controller.png: rolling p99 and each service's batch window over time."""
    c = experiments.get("controller") or {}
    if "step" not in c:
        return []
    step = c["step"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)  # type: ignore[attr-defined]
    series = step["rolling_p99"]
    cap = 10 * c["target_p99_ms"]
    top.plot([w["t"] for w in series], [min(cap, w["p99_ms"] or cap) for w in series], label="rolling 2-s p99")
    top.axhline(c["target_p99_ms"], color="grey", ls=":", label="target")
    top.axvline(step["step_at_s"], color="red", ls="--", label=f"step {step['low_qps']} -> {step['high_qps']} q/s")
    top.set(ylabel="p99 (ms)", yscale="log", title="Adaptive batching after a load step")
    top.legend(fontsize=8)
    services = sorted({s for a in step["arms"] for s in a["services"]})
    for service in services:
        points = [(a["t"], a["services"][service]) for a in step["arms"] if service in a["services"]]
        bottom.step([t for t, _ in points], [p["window_ms"] for _, p in points], where="post", label=service)
    bottom.axvline(step["step_at_s"], color="red", ls="--")
    bottom.set(xlabel="seconds", ylabel="batch window (ms)")
    if services:
        bottom.legend(fontsize=8)
    fig.tight_layout()
    path = out_dir / "controller.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)  # type: ignore[attr-defined]
    return [str(path)]
