"""`reconcile sweep REGISTRY --engine ray [--address ADDR]`: the sweep's jobs (reconcile/sweep.py SweepJob) on an
engine. The sweep's driver takes an executor (jobs -> (job, rows, seconds) as each finishes); this one runs
`sweep._run_in_child` (the job forked with its timeout and memory cap, as the built-in LocalExecutor does) as one
task per job on the engine. A job whose worker died twice, or whose node was lost for good, is a `died` row."""
from __future__ import annotations

import functools
import time
from typing import Optional

from . import BUILTIN, Failed, make


def _run(job) -> tuple[list, float]:
    from .. import sweep

    started = time.monotonic()
    return sweep._run_in_child(job, job.timeout), time.monotonic() - started


def _warm(registries: frozenset, memory: int) -> None:
    from .. import jobs as procs, sweep

    procs.WORKER_MEMORY = memory  # the driver's --memory: each job's cap
    try:
        sweep._warm(set(registries))
    except Exception:  # noqa: BLE001 (each job imports again and says why it cannot)
        pass


def executor(name: str, address: Optional[str] = None):
    """None for the builtin engine on this machine (the sweep's own LocalExecutor); else an executor on the named
    engine (a UserError, before any job runs, for an unknown engine or a missing extra)."""
    if name == BUILTIN and not address:
        make(name)  # the same checks
        return None
    engine = make(name, address)

    def run(jobs: list):
        from .. import sweep
        from ..jobs import memory_cap

        by_key = {job.key: job for job in jobs}
        warm = functools.partial(_warm, frozenset(job.registry for job in jobs), memory_cap())
        try:
            for key, result in engine.results(_run, [(job.key, job) for job in jobs], warm):
                job = by_key[key]
                if isinstance(result, Failed):
                    yield job, sweep.failed_rows(job, sweep.DIED, result.reason), 0.0
                else:
                    yield job, result[0], result[1]
        finally:
            engine.close()

    run.engine = engine
    return run
