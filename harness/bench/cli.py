"""`autoglm bench`: maximum sustainable throughput at p99 <= 200 ms of this system beside a
per-message loop, Faust's take() and raw Kafka pass-through, in one run on this machine."""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import subprocess
import sys
from contextlib import redirect_stdout
from datetime import UTC, datetime
from pathlib import Path

import orjson

from harness.bench.experiments import EXPERIMENTS
from harness.bench.report import markdown, summarise, write
from harness.bench.runner import BenchConfig, run_bench
from harness.bench.search import SearchPlan
from harness.bench.systems import SYSTEMS
from harness.bench.workload import PARAPHRASED, SOURCES, WORKLOADS, default_workload
from runtime.logs import setup_logging
from schemas.settings import REPO_ROOT, get_settings

DEFAULT_OUT = "bench-results"

PIPELINE_SWITCHES = (
    "adaptive_batching",
    "load_aware_routing",
    "latency_target_p99_ms",
    "max_batch_cost",
    "worker_transactions",
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="autoglm bench", description=__doc__)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout (the table goes to stderr)")
    p.add_argument("--quick", action="store_true", help="short steps and fewer of them: a few minutes")
    p.add_argument("--duration-s", type=float, help="seconds per load step (quick: 4, full: 10)")
    p.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated subset of {','.join(SYSTEMS)}")
    p.add_argument("--windows", help="batch windows (ms) for the pipeline's sweep, comma-separated; '' for none")
    p.add_argument(
        "--experiments",
        default=",".join(EXPERIMENTS),
        help=f"comma-separated subset of {','.join(EXPERIMENTS)} run after the systems; '' for none "
        "(quick: about 1-2 min of load each, full: 3-6 min, plus model loading)",
    )
    p.add_argument(
        "--experiment-rate",
        type=float,
        help="q/s that stands for (c)'s maximum in the experiments when (c) is not measured in this run",
    )
    p.add_argument("--max-steps", type=int, help="load steps per system search")
    p.add_argument("--budget-s", type=float, help="stop searching after this many seconds (quick: 600, full: 1800)")
    p.add_argument("--slo-ms", type=float, default=200.0, help="p99 latency that counts as sustained")
    p.add_argument("--users", type=int, default=100)
    p.add_argument("--services", type=int, default=4)
    p.add_argument(
        "--workload",
        choices=WORKLOADS,
        default=default_workload(),
        help="questions: ntm = MetaQA's paraphrased qa_val in raw text (default when its files are there), "
        "templated = MetaQA's qa_val",
    )
    p.add_argument("--raw-text", action="store_true", help="templated questions without the [entity] brackets")
    p.add_argument("--workers", type=int, default=1, help="worker processes of the pipeline")
    p.add_argument(
        "--reasoner",
        choices=["baseline", "gnn", "echo"],
        help="default: AUTOGLM_REASONER; echo answers instantly (harness smoke runs only)",
    )
    p.add_argument(
        "--out",
        default=DEFAULT_OUT,
        help="folder for bench.json, report.md, plots and logs; or a .md file (e.g. "
        "docs/benchmarks/2026-12-04-quick.md): the dated markdown report goes there, the rest to "
        f"{DEFAULT_OUT}/",
    )
    p.add_argument("--log-level", default=os.environ.get("AUTOGLM_LOG_LEVEL", "WARNING"))
    return p


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    preset = BenchConfig.quick if args.quick else BenchConfig.full
    systems = tuple(s.strip() for s in args.systems.split(",") if s.strip())
    unknown = set(systems) - set(SYSTEMS)
    if unknown or not systems:
        raise ValueError(f"unknown systems {sorted(unknown)}: choose from {', '.join(SYSTEMS)}")
    experiments = tuple(e.strip() for e in args.experiments.split(",") if e.strip())
    if set(experiments) - set(EXPERIMENTS):
        raise ValueError(
            f"unknown experiments {sorted(set(experiments) - set(EXPERIMENTS))}: choose from {', '.join(EXPERIMENTS)}"
        )
    kw: dict = dict(
        systems=systems,
        experiments=experiments,
        experiment_rate=args.experiment_rate,
        slo_ms=args.slo_ms,
        users=args.users,
        services=args.services,
        raw_text=args.raw_text,
        workload=args.workload,
        workers=args.workers,
        echo=args.reasoner == "echo",
        out_dir=out_paths(args.out)[0],
    )
    if args.duration_s:
        kw["step_s"] = args.duration_s
    if args.windows is not None:
        kw["windows"] = tuple(int(w) for w in args.windows.split(",") if w.strip())
    if args.budget_s:
        kw["budget_s"] = args.budget_s
    cfg = preset(**kw)
    if args.max_steps:
        cfg = preset(**{**kw, "search": SearchPlan(max_steps=args.max_steps, refine=cfg.search.refine)})
    return cfg


def out_paths(out: str) -> tuple[Path, Path | None]:
    """(folder for bench.json, plots and logs; file for the dated report, or None).
    `--out X.md` names the report (docs/benchmarks/ holds one per run); the folder is then the
    default, so a report in docs/ does not bring the run's logs and plots with it."""
    path = Path(out)
    if path.suffix.lower() == ".md":
        return Path(DEFAULT_OUT), path
    return path, None


def git_commit() -> str:
    """The checkout's short commit, marked when the tree has changes; "unknown" outside git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} (with uncommitted changes)" if dirty else head


def dated_report(table: str, argv: list[str], started: datetime, finished: datetime) -> str:
    """The markdown report with when, at which commit and with which command it was measured,
    under its title: what a report in docs/benchmarks/ must say to be read later."""
    title, _, rest = table.partition("\n")
    when = f"{started:%Y-%m-%d %H:%M}-{finished:%H:%M} UTC"
    if finished.date() != started.date():
        when = f"{started:%Y-%m-%d %H:%M} - {finished:%Y-%m-%d %H:%M} UTC"
    command = shlex.join(["uv", "run", "autoglm", "bench", *argv])
    return f"{title}\n\nRun {when}, commit {git_commit()}: `{command}`.\n{rest}"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    try:
        cfg = config_from_args(args)
    except ValueError as exc:
        print(f"autoglm bench: {exc}", file=sys.stderr)
        return 2
    settings = get_settings()
    if args.reasoner in ("baseline", "gnn"):
        settings = settings.model_copy(update={"reasoner": args.reasoner})
    from runtime.services import up

    with redirect_stdout(sys.stderr):  # stdout carries only the result
        up(settings)
    started = datetime.now(UTC)
    raw = asyncio.run(run_bench(cfg, settings))
    finished = datetime.now(UTC)
    config = {
        "mode": cfg.mode,
        "reasoner": "echo" if cfg.echo else settings.reasoner,
        "step_s": cfg.step_s,
        "slo_ms": cfg.slo_ms,
        "workers": cfg.workers,
        "cpus": os.cpu_count(),
        "experiments": list(cfg.experiments),
        "batch_window_ms": settings.batch_window_ms,
        "batch_max_size": settings.batch_max_size,
        "worker_max_batches": settings.worker_max_batches,
        "partitions": settings.partitions,
        **{k: v for k, v in settings.model_dump().items() if k in PIPELINE_SWITCHES},
        "workload": {
            "source": f"{SOURCES[args.workload]}, 1/2/3-hop in equal parts",
            "questions": args.workload,
            "users": cfg.users,
            "services": cfg.services,
            "raw_text": cfg.raw_text or args.workload == PARAPHRASED,
        },
    }
    result = summarise(raw, config)
    write(result, cfg.out_dir)
    table = markdown(result)
    report_path = out_paths(args.out)[1]
    if report_path is not None:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(dated_report(table, argv, started, finished))
        print(f"report written to {report_path}", file=sys.stderr)
    if args.json:
        print(table, file=sys.stderr)
        print(orjson.dumps(result).decode())
    else:
        print(table)
    return 0 if result["max_throughput_by_system"] and any(result["max_throughput_by_system"].values()) else 1
