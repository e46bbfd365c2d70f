"""The serving benchmark (`autoglm bench`): this system beside the usual ways of serving a
model from Kafka, under open-loop load, on one machine in one run. See `harness.bench.cli`."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """`autoglm bench [--json] [--quick] [--duration-s S] ...`; returns the exit status."""
    from harness.bench.cli import main as run

    return run(argv)
