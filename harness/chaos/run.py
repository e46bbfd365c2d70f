"""One pipeline under test and the phases run against it.

`PipelineRun` owns the isolated topics, the child processes, the answer watcher and the
lag probe. A `Phase` offers one cohort of questions at a steady rate while a scenario
injects its faults, waits until the cohort is answered (bounded), and verifies it by
question id. A scenario normally gets a run of its own; `--shared` runs several as
consecutive phases of one run (faster, less isolated).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from harness.chaos.load import Ask, Sender, metaqa_asks
from harness.chaos.verify import Tally, claims_in_logs, tally
from harness.isolation import isolate
from harness.watch import AnswerWatcher
from runtime.fleet import Fleet
from runtime.lag import LagReader
from runtime.services.kafka import delete_topics_async, ensure_topics_async
from schemas.settings import Settings
from schemas.topics import ANSWERS, BATCHES, QUESTIONS, topic_name

log = logging.getLogger(__name__)

READY_MARKS = ("Setting newly assigned partitions", "Joined group")


def isolated_settings(base: Settings, label: str, partitions: int) -> Settings:
    """Private topic prefix, stream app id and worker group for one run (harness.isolation)."""
    return isolate(base, f"chaos-{label}", partitions=partitions)


@dataclass
class FaultRecord:
    """One injected fault: when it began and ended (wall time) and what was true at that moment."""

    label: str
    start: float
    end: float
    evidence: dict[str, Any] = field(default_factory=dict)
    recovery_s: float | None = None
    from_end: bool = False  # measure recovery from the end (an overload drains after it)


class PipelineRun:
    """Isolated topics + child processes + answer watcher + lag probe."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.settings = settings
        self.fleet = Fleet(settings, log_dir)
        self.watcher = AnswerWatcher(settings, topic_name(settings, ANSWERS))
        self.lag = LagReader(settings)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._log_offsets: dict[str, int] = {}

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: Settings, log_dir: Path, workers: int, standby: bool) -> AsyncIterator[PipelineRun]:
        await ensure_topics_async(settings)
        run = cls(settings, log_dir)
        try:
            await run.lag.start()
            run._tasks.append(asyncio.create_task(run.watcher.run(run._stop)))
            run._tasks.append(asyncio.create_task(run._supervise()))
            run.start("streams", "streams")
            for i in range(1, workers + 1):
                run.start(f"worker-{i}", "workers")
            holding = None
            if standby:
                run.start("standby", "workers")
                holding = asyncio.create_task(run.hold_before_join("standby", timeout_s=600))
            await run.wait_serving(timeout_s=600)
            for i in range(1, workers + 1):  # all of them, or a late join rebalances mid-phase
                if not await run.wait_joined(f"worker-{i}", timeout_s=600):
                    raise TimeoutError(f"worker-{i} did not join its group in 10 minutes; see {log_dir}")
            if holding is not None:
                await holding
            yield run
        finally:
            run._stop.set()
            await asyncio.gather(*run._tasks, return_exceptions=True)
            await asyncio.to_thread(run.fleet.stop_all)
            await run.lag.stop()
            try:  # the tally is taken; the logs stay in log_dir
                await delete_topics_async(settings)
            except Exception as exc:  # noqa: BLE001 - must not hide the run's own failure
                log.warning("could not delete the run's topics %s*: %r", settings.topic_prefix, exc)

    # --- processes -------------------------------------------------------------------------

    def start(self, name: str, role: str) -> None:
        path = self.fleet.log_dir / f"{name}.log"
        self._log_offsets[name] = path.stat().st_size if path.exists() else 0
        self.fleet.start(name, role)

    def _log_since_start(self, name: str) -> str:
        path = self.fleet.log_dir / f"{name}.log"
        try:
            with path.open("rb") as fh:
                fh.seek(self._log_offsets.get(name, 0))
                return fh.read().decode(errors="replace")
        except OSError:
            return ""

    def log_count(self, name: str, text: str) -> int:
        """How often `text` appears in the log of the slot's current process."""
        return self._log_since_start(name).count(text)

    def joined(self, name: str) -> bool:
        """True once the slot's current process has joined its consumer group."""
        text = self._log_since_start(name)
        return any(mark in text for mark in READY_MARKS)

    async def wait_joined(self, name: str, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if name in self.fleet.slots and self.joined(name):
                return True
            await asyncio.sleep(0.5)
        return False

    async def hold_before_join(self, name: str, timeout_s: float) -> None:
        """Let a worker load its model, then SIGSTOP it before it connects to Kafka: a warm
        standby that `release` adds to the group within seconds, not a minute of model load."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self._log_since_start(name)
            if any(mark in text for mark in READY_MARKS) or "worker started" in text:
                raise RuntimeError(f"{name} joined the group before it could be held; cannot use it as a standby")
            if "kb loaded" in text:
                self.fleet.pause(name)
                return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"{name} did not load its knowledge base within {timeout_s:.0f}s")

    def busy(self, name: str, interval_s: float = 0.3) -> float | None:
        """CPU percent of a slot's process over `interval_s` (is it reasoning right now?); the
        scenarios pick their victim with it (`scenarios.busiest_worker`)."""
        try:
            return psutil.Process(self.fleet.pid(name)).cpu_percent(interval=interval_s)
        except (KeyError, psutil.Error):
            return None

    async def _supervise(self) -> None:
        while not self._stop.is_set():
            for crash in self.fleet.reap():
                log.warning("%s exited on its own (rc=%s); restarted", crash.name, crash.returncode)
                self._log_offsets[crash.name] = (self.fleet.log_dir / f"{crash.name}.log").stat().st_size
            await asyncio.sleep(1.0)

    # --- readiness and lag -----------------------------------------------------------------

    async def wait_serving(self, timeout_s: float) -> None:
        """Send probe questions until one is answered end to end (models loaded, groups joined)."""
        deadline = time.monotonic() + timeout_s
        probes: list[uuid.UUID] = []
        sender = Sender(self.settings, rate=1000)
        while time.monotonic() < deadline:
            ask = metaqa_asks(1, seed=len(probes))[0]
            probes.append(ask.question_id)
            await sender.run([ask])
            for _ in range(20):
                if self.watcher.answered(probes):
                    return
                await asyncio.sleep(0.5)
        raise TimeoutError(f"the pipeline did not answer a probe within {timeout_s:.0f}s; logs in {self.fleet.log_dir}")

    async def inflight_batches(self) -> int | None:
        return await self.lag.of(self.settings.worker_group_id, topic_name(self.settings, BATCHES))

    async def unbatched_questions(self) -> int | None:
        return await self.lag.of(self.settings.stream_app_id, topic_name(self.settings, QUESTIONS))

    async def wait_inflight(self, timeout_s: float = 15.0) -> int | None:
        """Wait (bounded) until the workers hold uncommitted batches; return how many."""
        return await self._wait_lag(self.inflight_batches, timeout_s)

    async def wait_unbatched(self, timeout_s: float = 15.0) -> int | None:
        """Wait (bounded) until the stream processor holds unacknowledged questions."""
        return await self._wait_lag(self.unbatched_questions, timeout_s)

    async def _wait_lag(self, probe: Any, timeout_s: float) -> int | None:
        deadline = time.monotonic() + timeout_s
        lag = None
        while time.monotonic() < deadline:
            lag = await probe()
            if lag:
                return lag
            await asyncio.sleep(0.05)
        return lag

    async def wait_quiet(self, timeout_s: float) -> bool:
        """Wait until nothing is uncommitted in either group (every effect delivered)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if await self.inflight_batches() == 0 and await self.unbatched_questions() == 0:
                return True
            await asyncio.sleep(1.0)
        return False


class Phase:
    """One cohort of questions offered at a steady rate while a scenario injects faults."""

    def __init__(self, run: PipelineRun, name: str, n: int, rate: float, seed: int) -> None:
        self.run = run
        self.name = name
        self.n = n
        self.asks: list[Ask] = metaqa_asks(n, seed)
        self.sender = Sender(run.settings, rate)
        self.faults: list[FaultRecord] = []
        self.started = 0.0

    async def at_fraction(self, fraction: float) -> None:
        """Wait until `fraction` of the cohort has been offered (or sending ended)."""
        while self.sender.offered < fraction * self.n and not self.sender.done.is_set():
            await asyncio.sleep(0.1)

    def record(
        self, label: str, start: float, end: float | None = None, from_end: bool = False, **evidence: Any
    ) -> FaultRecord:
        fault = FaultRecord(label, start, end if end is not None else start, evidence, from_end=from_end)
        self.faults.append(fault)
        log.info("fault %s: %s", label, evidence)
        return fault

    async def drive(self, fault: Any, drain_s: float, settle_s: float = 3.0) -> Tally:
        """Offer the cohort while `fault(run, phase)` runs, drain, verify."""
        self.started = time.time()
        sending = asyncio.create_task(self.sender.run(self.asks))
        injecting = asyncio.create_task(fault(self.run, self))
        send_deadline = self.n / self.sender.rate + drain_s
        try:
            await asyncio.wait_for(asyncio.gather(sending, injecting, return_exceptions=True), timeout=send_deadline)
        except TimeoutError:
            log.error("phase %s: sending or fault injection did not finish within %.0fs", self.name, send_deadline)
        for task in (sending, injecting):
            if not task.done():
                task.cancel()
        for what, outcome in zip(
            ("sending", "fault"), await asyncio.gather(sending, injecting, return_exceptions=True)
        ):
            if isinstance(outcome, BaseException):  # reported, not raised: the phase is still verified
                self.record(f"{what} failed", time.time(), error=repr(outcome)[:500])
        ids = sorted(self.sender.acked)
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline and not self.run.watcher.all_answered(ids):
            await asyncio.sleep(0.5)
        await self.run.wait_quiet(timeout_s=max(5.0, deadline - time.monotonic()))
        await asyncio.sleep(settle_s)  # late duplicates (a resumed zombie) have time to show
        self._recovery(ids)
        claims = claims_in_logs(self.run.fleet.log_dir)  # the workers' won claims, by question id
        return await tally(self.run.settings, ids, self.run.watcher, claims)

    def latency_s(self) -> dict[str, float | None]:
        """Seconds from offering a question to its first answer on the topic (p50, p99, max)."""
        first_at, offered_at = self.run.watcher.first_at, self.sender.offered_at
        values = sorted(first_at[q] - offered_at[q] for q in self.sender.acked if q in first_at)
        if not values:
            return {"p50": None, "p99": None, "max": None}
        pick = lambda f: round(values[int(f * (len(values) - 1))], 2)
        return {"p50": pick(0.5), "p99": pick(0.99), "max": round(values[-1], 2)}

    def _recovery(self, ids: list[uuid.UUID]) -> None:
        """Per fault, seconds from its start (or end, for an overload) until both
        (a) every question offered before then has its first answer on the topic (the work the
            fault caught is done), and
        (b) answers flow normally again: the first one-second cohort of questions offered after
            it is answered completely, each within the normal latency (twice the p99 before the
            first fault, at least 3 s); when no cohort gets there, when everything offered
            after it is answered.
        None when a question in either set was never answered."""
        first_at, offered_at = self.run.watcher.first_at, self.sender.offered_at
        acked = set(ids)
        normal = self._normal_latency(acked)
        for fault in self.faults:
            t = fault.end if fault.from_end else fault.start
            before = [q for q in acked if offered_at[q] < t]
            after = sorted((q for q in acked if offered_at[q] >= t), key=offered_at.__getitem__)
            if any(q not in first_at for q in before + after):
                fault.recovery_s = None
                continue
            caught = max((first_at[q] for q in before), default=t)
            flowing = self._flowing_again(after, t, normal)
            fault.recovery_s = round(max(0.0, caught - t, flowing - t), 1)
            fault.evidence["normal_latency_s"] = round(normal, 2)

    def _normal_latency(self, acked: set[uuid.UUID]) -> float:
        """Twice the p99 latency of questions answered before the first fault (at least 3 s)."""
        first_fault = min((f.start for f in self.faults), default=float("inf"))
        first_at, offered_at = self.run.watcher.first_at, self.sender.offered_at
        latencies = sorted(first_at[q] - offered_at[q] for q in acked if q in first_at and first_at[q] < first_fault)
        p99 = latencies[int(0.99 * (len(latencies) - 1))] if latencies else 0.0
        return max(3.0, 2 * p99)

    def _flowing_again(self, after: list[uuid.UUID], t: float, normal: float) -> float:
        """Arrival of the last answer of the first normal one-second cohort offered after `t`."""
        if not after:
            return t
        first_at, offered_at = self.run.watcher.first_at, self.sender.offered_at
        cohorts: dict[int, list[uuid.UUID]] = {}
        for q in after:
            cohorts.setdefault(int(offered_at[q] - t), []).append(q)
        for second in sorted(cohorts):
            cohort = cohorts[second]
            if all(first_at[q] - offered_at[q] <= normal for q in cohort):
                return max(first_at[q] for q in cohort)
        return max(first_at[q] for q in after)
