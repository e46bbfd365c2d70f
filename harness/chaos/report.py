"""Results of a chaos run: one JSON object, or a table for people."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from harness.chaos.run import FaultRecord
from harness.chaos.verify import Tally
from runtime.fleet import Crash

KEYS = ("sent", "answered", "lost", "duplicate_claims", "duplicates_on_topic", "recovery_s")


@dataclass
class ScenarioResult:
    name: str
    summary: str
    tally: Tally
    faults: list[FaultRecord]
    crashes: list[Crash] = field(default_factory=list)
    seconds: float = 0.0
    rate_qps: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def recovery_s(self) -> float | None:
        """The slowest recovery of the scenario's faults; None when one never recovered."""
        values = [f.recovery_s for f in self.faults]
        if not values:
            return None
        if any(v is None for v in values):
            return None
        return max(v for v in values if v is not None)

    def to_json(self) -> dict[str, Any]:
        t = self.tally
        return {
            "sent": t.sent,
            "answered": t.answered,
            "lost": t.lost,
            "duplicate_claims": t.duplicate_claims,
            "duplicates_on_topic": t.duplicates_on_topic,
            "recovery_s": self.recovery_s,
            "missing_rows": t.missing_rows,
            "missing_on_topic": t.missing_on_topic,
            "missing_claims": t.missing_claims,
            "lost_ids": list(t.lost_ids),
            "duplicate_examples": list(t.duplicate_examples),
            "rate_qps": round(self.rate_qps, 1),
            "seconds": round(self.seconds, 1),
            "summary": self.summary,
            "faults": [
                {
                    "label": f.label,
                    "at_ms": int(f.start * 1000),
                    "duration_s": round(f.end - f.start, 1),
                    "recovery_s": f.recovery_s,
                    **f.evidence,
                }
                for f in self.faults
            ],
            "crashes": [
                {"process": c.name, "returncode": c.returncode, "log_tail": c.log_tail[-800:]} for c in self.crashes
            ],
            **self.extra,
        }


def totals(results: list[ScenarioResult]) -> dict[str, Any]:
    out: dict[str, Any] = {k: sum(getattr(r.tally, k) for r in results) for k in KEYS if k != "recovery_s"}
    recoveries = [r.recovery_s for r in results if r.faults]
    out["recovery_s"] = None if any(v is None for v in recoveries) else max(recoveries, default=0.0)
    return out


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {"cpus": os.cpu_count(), "loadavg_1_5_15": [round(x, 2) for x in load]}


def as_json(results: list[ScenarioResult], context: dict[str, Any]) -> dict[str, Any]:
    return {
        "scenarios": {r.name: r.to_json() for r in results},
        "total": totals(results),
        **context,
    }


def _fmt(v: Any) -> str:
    if v is None:
        return "never"
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)


def as_table(results: list[ScenarioResult], context: dict[str, Any]) -> str:
    header = ["scenario", "sent", "answered", "lost", "dup claims", "dup on topic", "recovery s"]
    rows = [[r.name] + [_fmt(r.to_json()[k]) for k in KEYS] for r in results]
    total = totals(results)
    rows.append(["total"] + [_fmt(total[k]) for k in KEYS])
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    out = [line(header), line(["-" * w for w in widths])]
    out += [line(row) for row in rows[:-1]] + [line(["-" * w for w in widths]), line(rows[-1])]
    out.append("")
    for r in results:
        lat = r.extra.get("latency_s") or {}
        out.append(
            f"{r.name}: {r.summary} ({r.rate_qps:.0f} q/s offered, {r.seconds:.0f} s; latency p50 "
            f"{_fmt(lat.get('p50'))} s, p99 {_fmt(lat.get('p99'))} s, max {_fmt(lat.get('max'))} s)"
        )
        for f in r.faults:
            ev = ", ".join(f"{k}={v}" for k, v in f.evidence.items())
            out.append(f"  {f.label}: lasted {f.end - f.start:.1f} s, recovered in {_fmt(f.recovery_s)} s ({ev})")
        for c in r.crashes:
            out.append(f"  CRASH {c.name} rc={c.returncode}: {c.log_tail[-300:]!r}")
        memory = r.extra.get("memory")
        if memory:
            for name, m in memory.items():
                out.append(
                    f"  RSS {name}: start {m['start_mib']} MiB, peak {m['peak_mib']} MiB, end {m['end_mib']} MiB"
                    f" -> {'flat' if m['flat'] else 'NOT flat'}"
                )
            out.append(f"  backlog (in Kafka): {r.extra.get('backlog')}")
    out.append(f"machine: {context.get('machine')}")
    return "\n".join(out)
