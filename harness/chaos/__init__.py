"""Fault injection against the real pipeline: kills, pauses, broker and database outages,
rebalances and overload, verified by question id (`autoglm chaos`, `make chaos`).

Modules: `fleet` (child processes), `load` (steady offered load), `watch` (read_committed
answers, group lag), `run` (one pipeline and its phases), `scenarios` (the faults),
`overload` (capacity and memory under 2x load), `verify` (rows and answers per question
id), `report` (JSON and table), `driver` (the command line).
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """`autoglm chaos [--n N] [--scenario NAME ...] [--json]`; see `harness.chaos.driver`."""
    from harness.chaos.driver import main as driver_main

    return driver_main(argv)


__all__ = ["main"]
