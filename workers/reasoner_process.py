"""The reasoner in a child process of the worker, behind the same `answer_batch` interface.

Why: a reasoner call is mostly Python and numpy glue between small torch ops, so it holds
the GIL; when it ran in a thread of the worker, the worker's event loop (Kafka fetches,
the database claim, the transaction's five round trips) had to win the GIL back after
every socket call. A profile at 60 questions/s found the loop's main thread in
`socket.send` 14 % of the time, waiting for the GIL, not the kernel. Side by side,
alternating runs (fixed-rate driver, 6 steps per mode): p99 at 150 q/s 176 ms with the
child vs 261 ms with a thread (medians over steps); no gain at 60 q/s (docs/serving.md, "The reasoner in
its own process").

The child loads the model once (`loader(settings)`, e.g. `load_for_serving`) and lives as
long as the worker process: a broker reconnect does not reload it. It ignores SIGINT and
SIGTERM (the worker decides when to stop: it drains first) and exits by itself when the
worker process is gone (SIGKILL included), so it is never orphaned. If it dies, the call in
flight is retried once on a fresh child; a second failure is raised (the worker then
answers that batch with an explicit `error`).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from reasoning.reasoner import Reasoned, Reasoner
from runtime.heap import collector_off, freeze_startup_objects
from schemas.question import Question
from schemas.settings import Settings
from workers.splitting import answer_within_budget

log = logging.getLogger(__name__)

Loader = Callable[[Settings], Reasoner]
T = TypeVar("T")

_child: Reasoner | None = None  # the reasoner, in the child process only
_max_batch_cost = 0.0


class ReasonerProcess:
    """A `Reasoner` whose calls run in a child process (blocking calls: the worker makes
    them from its reasoner thread, which only waits, so the event loop keeps the GIL)."""

    def __init__(self, settings: Settings, loader: Loader) -> None:
        self.settings = settings
        self.loader = loader
        self.name = "?"
        self.version = "?"
        self._stats: dict[str, dict] = {}
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> ReasonerProcess:
        """Start the child and wait until its model is loaded (tens of seconds)."""
        self._pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),  # no fork of a process with threads
            initializer=_init_child,
            initargs=(
                self.settings,
                self.loader,
                os.getpid(),
                logging.getLevelName(logging.getLogger().getEffectiveLevel()),
            ),
        )
        self.name, self.version, self._stats = self._pool.submit(_describe).result()
        return self

    def answer_batch(self, questions: Sequence[Question]) -> list[Reasoned]:
        """One call in the child (split there by cost when over `AUTOGLM_MAX_BATCH_COST`)."""
        assert self._pool is not None, "call start() first"
        try:
            results, self._stats = self._pool.submit(_answer, list(questions)).result()
        except BrokenProcessPool:
            log.error("the reasoner process died; starting a new one and retrying the call once")
            self._pool.shutdown(wait=False, cancel_futures=True)
            self.start()
            results, self._stats = self._pool.submit(_answer, list(questions)).result()
        return results

    def cache_stats(self) -> dict[str, dict]:
        """The child's cache counters as of its last answer (published in `workers.status`)."""
        return self._stats

    def run_in_child(self, fn: Callable[[], T]) -> T:
        """`fn()` run in the child process (a picklable, module-level function): for checks
        of the child's own state, such as its garbage collector."""
        assert self._pool is not None, "call start() first"
        return self._pool.submit(fn).result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def serving_reasoner(settings: Settings, loader: Loader) -> Reasoner:
    """What a worker answers with: `loader(settings)` in a child process when
    `AUTOGLM_REASONER_PROCESS` (the default), else in this process (blocking; both wait
    until the models are loaded)."""
    if settings.reasoner_process:
        return ReasonerProcess(settings, loader).start()
    return loader(settings)  # the calling process freezes it with the rest of its start-up (workers.main)


def _init_child(settings: Settings, loader: Loader, parent_pid: int, log_level: str) -> None:
    global _child, _max_batch_cost
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True, name="parent-watch").start()
    from runtime.logs import setup_logging

    setup_logging(log_level)  # the worker's level: its log shows the model loading (`kb loaded`)
    _max_batch_cost = settings.max_batch_cost
    with collector_off():
        _child = loader(settings)
    freeze_startup_objects()


def _exit_with_parent(parent_pid: int) -> None:
    """A killed worker cannot stop its child: the child notices it was re-parented."""
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(0)


def _stats() -> dict[str, dict]:
    stats = getattr(_child, "cache_stats", None)
    return stats() if stats is not None else {}


def _describe() -> tuple[str, str, dict[str, dict]]:
    assert _child is not None, "the initializer loads the reasoner"
    return _child.name, _child.version, _stats()


def _answer(questions: list[Question]) -> tuple[list[Reasoned], dict[str, dict]]:
    assert _child is not None, "the initializer loads the reasoner"
    return answer_within_budget(_child, questions, _max_batch_cost), _stats()
