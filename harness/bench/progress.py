"""Progress lines of a benchmark run, on stderr (stdout is reserved for the result)."""

from __future__ import annotations

import sys
import time


def say(message: str) -> None:
    """Progress on stderr (stdout is reserved for the result)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
