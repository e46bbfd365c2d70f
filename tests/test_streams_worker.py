"""The stream processor's Faust worker writes no terminal escape codes into log files."""

from __future__ import annotations

import io

from schemas.settings import Settings
from streams.app import create_app
from streams.main import build_worker


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_no_spinner_unless_stdout_is_a_terminal() -> None:
    settings = Settings()
    assert build_worker(create_app(settings), stdout=io.StringIO()).spinner is None  # a log file
    assert build_worker(create_app(settings), stdout=_Terminal()).spinner is not None
