"""`autoglm`: the thin command line that ties infra, streams and workers together."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
from pathlib import Path

import orjson

from runtime.fleet import Fleet, run_until_signalled
from runtime.logs import setup_logging
from schemas.settings import Settings, get_settings


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from runtime.services import up

    up(settings)
    return 0


def cmd_down(settings: Settings, args: argparse.Namespace) -> int:
    from runtime.services import down

    down(settings)
    return 0


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    if args.reasoner:
        settings = settings.model_copy(update={"reasoner": args.reasoner})
    if args.streams_only:
        from streams.main import run_streams

        run_streams(settings)
        return 0
    if args.workers_only:
        from workers.main import run_worker

        run_worker(settings)
        return 0
    fleet = Fleet(settings, log_level=args.log_level)
    fleet.start_pipeline(args.workers, settings.health_port)
    print(
        f"pipeline running: 1 stream processor, {args.workers} worker(s); Ctrl-C or SIGTERM stops it", file=sys.stderr
    )
    return run_until_signalled(fleet)


def cmd_ask(settings: Settings, args: argparse.Namespace) -> int:
    from autoglm.client import ask

    answer = asyncio.run(ask(settings, args.question, args.service, args.user, args.timeout))
    if args.json:
        print(answer.to_bytes().decode())
    else:
        from autoglm.render import print_answer

        print_answer(answer)
    return 0 if answer.status == "ok" else 1


def cmd_produce(settings: Settings, args: argparse.Namespace) -> int:
    from autoglm.client import read_metaqa, send_questions, spread_users

    items = read_metaqa(Path(args.file), args.limit, args.raw_text)
    questions = spread_users(items, args.services, args.users)
    n = asyncio.run(send_questions(settings, questions, progress=True, total=len(questions)))
    print(f"produced {n} questions", file=sys.stderr)
    return 0


def cmd_consume(settings: Settings, args: argparse.Namespace) -> int:
    from runtime.tail import records, tail
    from schemas.topics import topic_name

    async def run() -> None:
        start = "latest" if args.follow else "earliest"
        async with tail(settings, topic_name(settings, args.topic), start, "autoglm-cli-consume") as consumer:
            idle = 0.0
            async for polled in records(consumer, timeout_ms=500):
                idle = 0.0 if polled else idle + 0.5
                for rec in polled:
                    sys.stdout.write(rec.value.decode("utf-8", "replace") + "\n")
                sys.stdout.flush()
                if not args.follow and idle >= args.idle_s:
                    return

    asyncio.run(run())
    return 0


def cmd_replay(settings: Settings, args: argparse.Namespace) -> int:
    from streams.replay import run_replay

    result = run_replay(settings, args.what, args.start, args.end, Path(args.export) if args.export else None)
    print(orjson.dumps(result.__dict__).decode())
    return 0


def cmd_eval(settings: Settings, args: argparse.Namespace) -> int:
    from reasoning.evaluate import evaluate
    from reasoning.loading import load_reasoner

    if args.reasoner:
        settings = settings.model_copy(update={"reasoner": args.reasoner})
    reasoner = load_reasoner(settings)
    result = evaluate(reasoner, Path(args.questions), raw_text=args.raw_text, limit=args.limit)
    if args.json:
        print(orjson.dumps(result).decode())
    else:
        for key, value in result.items():
            print(f"{key:>22}: {value:.4f}" if isinstance(value, float) else f"{key:>22}: {value}")
    return 0


def cmd_train(settings: Settings, args: argparse.Namespace) -> int:
    from reasoning.gnn.train import main as train_main

    return train_main(args.rest)


def cmd_explain(settings: Settings, args: argparse.Namespace) -> int:
    import asyncpg

    from reasoning.gnn.explain import render

    async def fetch() -> dict | None:
        conn = await asyncpg.connect(settings.dsn)
        try:
            payload = await conn.fetchval("SELECT payload FROM answers WHERE question_id = $1::uuid", args.question_id)
        finally:
            await conn.close()
        return orjson.loads(payload) if payload else None

    payload = asyncio.run(fetch())
    if payload is None:
        raise ValueError(f"no answer stored for question_id {args.question_id}: ask it first (`autoglm ask`)")
    print(render(payload, args.format))
    return 0


def cmd_bench_reasoner(settings: Settings, args: argparse.Namespace) -> int:
    from reasoning.bench_reasoner import main as bench_main

    return bench_main(args.rest)


def _harness(name: str):
    """The `main` of a harness tool (`bench`, `chaos`, `fuzz`). The harness drives the
    product from outside and ships with the repository, not the wheel, so the product
    names it here instead of importing it (import-linter keeps the product free of it)."""
    try:
        return importlib.import_module(f"harness.{name}").main
    except ModuleNotFoundError as exc:
        raise RuntimeError(
            f"`autoglm {name}` needs the harness, which ships with the repository, not the "
            f"package: run it from a checkout (`uv run autoglm {name}`)"
        ) from exc


def cmd_bench(settings: Settings, args: argparse.Namespace) -> int:
    return _harness("bench")(args.rest)


def cmd_chaos(settings: Settings, args: argparse.Namespace) -> int:
    return _harness("chaos")(args.rest)


def cmd_fuzz(settings: Settings, args: argparse.Namespace) -> int:
    return _harness("fuzz")(args.rest)


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from autoglm.demo import run_demo

    return run_demo(settings, n=args.n, workers=args.workers, raw_text=args.raw_text, reasoner=args.reasoner)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autoglm", description=__doc__)
    parser.add_argument("--log-level", default=os.environ.get("AUTOGLM_LOG_LEVEL", "WARNING"))
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("up", help="start Kafka and PostgreSQL (idempotent), create topics, migrate")
    sub.add_parser("down", help="stop the local Kafka and PostgreSQL")

    p = sub.add_parser("run", help="run the stream processor and N workers")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--streams-only", action="store_true")
    p.add_argument("--workers-only", action="store_true")
    p.add_argument("--reasoner", choices=["baseline", "gnn"])

    p = sub.add_parser("ask", help="ask one question and print its answer and reasoning path")
    p.add_argument("question")
    p.add_argument("--service", default="cli")
    p.add_argument("--user", default="cli-user")
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("produce", help="send a MetaQA-format file of questions")
    p.add_argument("file")
    p.add_argument("--limit", type=int)
    p.add_argument("--raw-text", action="store_true", help="remove the [entity] brackets")
    p.add_argument("--services", type=int, default=3)
    p.add_argument("--users", type=int, default=50)

    p = sub.add_parser("consume", help="print records of a topic as JSON lines")
    p.add_argument("topic", choices=["answers", "questions.dlq", "feedback.dlq", "batches", "feedback", "questions"])
    p.add_argument("--follow", action="store_true", help="start at the end and keep reading")
    p.add_argument("--idle-s", type=float, default=2.0, help="stop after this long without records")

    p = sub.add_parser("replay", help="re-read a topic from a time or offset and rebuild its table")
    p.add_argument("what", choices=["feedback", "answers"])
    p.add_argument("--from", dest="start", help="ISO-8601 time or offset (default: the beginning)")
    p.add_argument("--to", dest="end", help="ISO-8601 time or offset (default: the end at start)")
    p.add_argument("--export", help="feedback only: write the fine-tuning set (JSONL)")

    p = sub.add_parser("eval", help="evaluate the reasoner on a MetaQA-format file")
    p.add_argument("--questions", required=True)
    p.add_argument("--raw-text", action="store_true")
    p.add_argument("--json", action="store_true")
    p.add_argument("--limit", type=int)
    p.add_argument("--reasoner", choices=["baseline", "gnn"])

    p = sub.add_parser("train", add_help=False, help="train the GNN reasoner on qa_train (see reasoning/checkpoints)")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="options passed to the trainer (try --help)")

    p = sub.add_parser("explain", help="render an answered question's subgraph with its path highlighted")
    p.add_argument("question_id")
    p.add_argument("--format", choices=["dot", "svg", "mermaid"], default="mermaid")

    p = sub.add_parser("bench-reasoner", add_help=False, help="questions/second of the reasoner alone, per stage")
    p.add_argument("rest", nargs=argparse.REMAINDER)

    p = sub.add_parser("bench", add_help=False, help="serving benchmark through Kafka: baselines, ceiling, this system")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="e.g. --quick --json")

    p = sub.add_parser(
        "chaos", add_help=False, help="fault-injection suite: kills, restarts, pauses; counts lost and doubled"
    )
    p.add_argument("rest", nargs=argparse.REMAINDER, help="e.g. --n 5000 --json")

    p = sub.add_parser(
        "fuzz", add_help=False, help="hostile and malformed input against the real ingest and feedback paths"
    )
    p.add_argument("rest", nargs=argparse.REMAINDER, help="e.g. --n 100000")

    p = sub.add_parser("demo", help="run the pipeline on qa_val questions and summarise")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--raw-text", action="store_true")
    p.add_argument("--reasoner", choices=["baseline", "gnn"])
    return parser


COMMANDS = {
    "up": cmd_up,
    "down": cmd_down,
    "run": cmd_run,
    "ask": cmd_ask,
    "produce": cmd_produce,
    "consume": cmd_consume,
    "replay": cmd_replay,
    "eval": cmd_eval,
    "demo": cmd_demo,
    "train": cmd_train,
    "explain": cmd_explain,
    "bench-reasoner": cmd_bench_reasoner,
    "bench": cmd_bench,
    "chaos": cmd_chaos,
    "fuzz": cmd_fuzz,
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if hasattr(args, "rest"):  # pass-through commands hand their options to their own parser
        args.rest = unknown + list(args.rest or [])
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    setup_logging(args.log_level)
    try:
        return COMMANDS[args.command](get_settings(), args)
    except (RuntimeError, TimeoutError, ValueError, FileNotFoundError) as exc:
        print(f"autoglm {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
