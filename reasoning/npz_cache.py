"""Cache files in the state folder: written atomically, and never worth failing for.

Several worker processes may build the same cache at once; each writes its own temporary
file and renames it into place, so a reader sees either no file or a whole one. A state
folder that cannot be written only costs the next start its speed, so that is a warning.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def write_npz(path: Path, **arrays: np.ndarray) -> bool:
    """Save `arrays` to `path` atomically; False (and a warning) when it cannot be written."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(tmp, **arrays)
        tmp.replace(path)
        return True
    except OSError as error:
        log.warning("cache not written: %s (%s); set AUTOGLM_STATE_DIR to a writable folder", path, error)
        tmp.unlink(missing_ok=True)
        return False
