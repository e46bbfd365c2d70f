"""`python -m autoglm.chaos`: the fault suite without the full CLI."""

import sys

from autoglm.chaos import main
from autoglm.logs import setup_logging

setup_logging("WARNING")
sys.exit(main(sys.argv[1:]))
