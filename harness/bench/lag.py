"""Consumer lag: how far a consumer group's committed offsets trail the end of its topic."""

from __future__ import annotations

import asyncio
import logging

from runtime.lag import LagReader
from schemas.settings import Settings

log = logging.getLogger(__name__)


class LagSampler:
    """Samples the lag of (group, topic) pairs; `samples[group]` collects one total per sample."""

    def __init__(self, settings: Settings, groups: list[tuple[str, str]]) -> None:
        self.groups = groups
        self.samples: dict[str, list[int]] = {group: [] for group, _ in groups}
        self.reader = LagReader(settings)

    async def start(self) -> None:
        await self.reader.start()

    async def stop(self) -> None:
        await self.reader.stop()

    async def lag(self, group: str, topic: str) -> int:
        return await self.reader.lag(group, topic)

    async def sample_every(self, interval_s: float) -> None:
        """Sample until cancelled."""
        while True:
            for group, topic in self.groups:
                try:
                    self.samples[group].append(await self.lag(group, topic))
                except Exception as exc:  # noqa: BLE001 - a missed sample is not a failed run
                    log.debug("lag sample failed for %s: %r", group, exc)
            await asyncio.sleep(interval_s)

    def take(self) -> dict[str, dict[str, float]]:
        """Max and mean per group since the last take, then forget them."""
        out = {}
        for group, values in self.samples.items():
            if values:
                out[group] = {"max": max(values), "mean": round(sum(values) / len(values), 1)}
            self.samples[group] = []
        return out
