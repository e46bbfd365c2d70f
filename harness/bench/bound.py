"""What the model alone allows: an upper bound on (c) measured in the same run.

Why: the pass-through ceiling does no work per message, so a fraction of it says little
until we know how fast the reasoner itself answers on this machine with nothing else
running. `python -m reasoning.bench_reasoner --json` (the `make bench-reasoner` code) runs in
its own process after the systems' searches, with the same settings as (c)'s worker: no
Kafka, no PostgreSQL, no Faust, warm caches, mixed-hop batches of 100. The report adds its
CPU per question to the pass-through's (`report.reasoner_bound`): the least any system that
relays questions through Kafka and runs this reasoner on them must spend per question.
"""

from __future__ import annotations

import asyncio
import json
import sys

from runtime.fleet import settings_env
from schemas.settings import Settings

TIMEOUT_S = 240.0


async def reasoner_alone(settings: Settings, batches: int = 5) -> dict:
    """{'warm_qps', 'cpu_us_per_question', 'threads', 'device', 'load_s'} or {'error': why}."""
    cmd = [sys.executable, "-m", "reasoning.bench_reasoner", "--json", "--batches", str(batches)]
    proc = await asyncio.create_subprocess_exec(
        *cmd, env=settings_env(settings), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return {"error": f"reasoning.bench_reasoner took over {TIMEOUT_S:.0f} s; run `make bench-reasoner` to see why"}
    if proc.returncode != 0:
        return {"error": f"reasoning.bench_reasoner exited {proc.returncode}: {err.decode(errors='replace')[-300:]}"}
    report = json.loads(out)
    return {
        "warm_qps": report["passes"]["warm"]["questions_per_s"],
        "cpu_us_per_question": report["passes"]["warm"]["cpu_us_per_question"],
        "threads": report["threads"],
        "device": report["device"],
        "load_s": report["load_s"],
    }
