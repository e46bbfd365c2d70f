"""`workers.reasoner_process`: the reasoner in a child process answers like the same
reasoner in this process, survives the death of its child, and never outlives the worker."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import psutil

from harness.bench.echo import EchoReasoner, load_echo
from schemas.question import Question
from schemas.settings import Settings
from workers.reasoner_process import ReasonerProcess, serving_reasoner


def _questions(n: int) -> list[Question]:
    return [
        Question(
            question_id=uuid.uuid4(),
            service="svc",
            user_id=f"u{i}",
            text=f"who directed [Film {i}]",
            ts=int(time.time() * 1000),
        )
        for i in range(n)
    ]


def _child_pids(pid: int) -> list[int]:
    """The reasoner processes under `pid` (not multiprocessing's resource tracker, nor a
    short-lived child that has exited and not been reaped yet: a fresh-clone CI run met one
    as a zombie, whose command line cannot be read)."""
    pids = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                pids.append(child.pid)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue
    return pids


def test_answers_like_the_same_reasoner_in_process() -> None:
    questions = _questions(5)
    proc = ReasonerProcess(Settings(), load_echo).start()
    try:
        assert (proc.name, proc.version) == (EchoReasoner.name, EchoReasoner.version)
        assert proc.answer_batch(questions) == EchoReasoner().answer_batch(questions)
        assert proc.cache_stats() == {}
    finally:
        proc.close()


def test_the_loaded_reasoner_is_out_of_the_collectors_reach() -> None:
    """A full collection must not walk the loaded model (520 ms with the GNN's ~530,000
    objects): the child freezes what it loaded before it answers."""
    proc = ReasonerProcess(Settings(), load_echo).start()
    try:
        assert proc.run_in_child(gc.get_freeze_count) > 10_000  # the imports and the loaded reasoner
    finally:
        proc.close()


def test_in_process_when_switched_off() -> None:
    assert isinstance(serving_reasoner(Settings(reasoner_process=False), load_echo), EchoReasoner)


def test_a_dead_child_is_replaced_and_the_call_retried() -> None:
    proc = ReasonerProcess(Settings(), load_echo).start()
    try:
        [child] = _child_pids(os.getpid())
        os.kill(child, signal.SIGKILL)
        psutil.Process(child).wait(10)
        assert proc.answer_batch(_questions(2))[1].topic_entity == "Film 1"
        assert child not in _child_pids(os.getpid())
    finally:
        proc.close()


def test_the_child_exits_when_the_worker_is_killed(tmp_path) -> None:
    script = textwrap.dedent(
        """
        import sys, time
        from harness.bench.echo import load_echo
        from schemas.settings import Settings
        from workers.reasoner_process import ReasonerProcess
        if __name__ == "__main__":
            proc = ReasonerProcess(Settings(), load_echo).start()  # kept: a dropped pool shuts its child down
            print("ready", flush=True)
            time.sleep(600)
        """
    )
    (tmp_path / "worker.py").write_text(script)
    worker = subprocess.Popen([sys.executable, str(tmp_path / "worker.py")], stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        children = [psutil.Process(pid) for pid in _child_pids(worker.pid)]
        assert children, "the reasoner process should be running"
        worker.kill()
        worker.wait(10)
        gone, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, f"orphaned: {alive}"
    finally:
        if worker.poll() is None:
            worker.kill()
