"""The `Driver` that measures one system, with the processes whose CPU it samples: every
system of the run (idle ones show too), the harness, the broker and PostgreSQL."""

from __future__ import annotations

import os

from harness.bench.driver import Driver
from harness.bench.services import service_pids
from harness.bench.systems import System
from harness.bench.workload import Workload
from schemas.settings import Settings


def driver_for(system: System, systems: list[System], base: Settings, workload: Workload) -> Driver:
    def pids() -> dict[str, int]:
        """Every process of ours that is alive: the idle systems not yet measured show too."""
        found = {f"{s.name}:{role}": pid for s in systems for role, pid in s.pids().items()}
        found["harness"] = os.getpid()
        broker, database = service_pids(base)  # read each time: either may restart mid-run
        if broker:
            found["kafka"] = broker
        if database:
            found["postgres"] = database  # the postmaster: its tree holds every backend
        return found

    return Driver(
        system.name,
        system.settings,
        workload,
        system.lag_groups(),
        pids,
        system.batch_max_size(),
        services=lambda: service_pids(base),
    )
