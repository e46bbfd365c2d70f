"""`python -m workers`: one batch worker until SIGTERM (what `autoglm run` starts)."""

from __future__ import annotations

import argparse
import os

from runtime.logs import setup_logging
from schemas.settings import get_settings
from workers.main import run_worker

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m workers", description=__doc__)
    parser.add_argument("--log-level", default=os.environ.get("AUTOGLM_LOG_LEVEL", "WARNING"))
    setup_logging(parser.parse_args().log_level)
    run_worker(get_settings())
