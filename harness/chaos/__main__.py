"""`python -m harness.chaos`: the fault suite without the full CLI."""

import sys

from harness.chaos import main
from runtime.logs import setup_logging

setup_logging("WARNING")
sys.exit(main(sys.argv[1:]))
