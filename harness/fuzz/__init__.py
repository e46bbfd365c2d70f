"""Hostile and malformed input against the real ingest and feedback paths (`autoglm fuzz`).

Modules: `cases` (seeded generators, each record with the dead-letter class it must get),
`run` (an isolated pipeline as child processes, produce, collect, verify, summarise).
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """`autoglm fuzz [--n 100000] [--seed 1]`; see `harness.fuzz.run`."""
    from harness.fuzz.run import main as run_main

    return run_main(argv)


__all__ = ["main"]
