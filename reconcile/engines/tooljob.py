"""One (model, tool, release) job as an engine runs it: a picklable `ToolJob` with a stable key, and the top-level
function `run_tool_job` that runs it in a fresh process, exactly as reconcile.runner runs a tool job today: a
forked child (its own process group, killed whole at the end), the job's timeout, the memory cap (an allocation
beyond it is an error row saying so, not a dead node), the release's prepared folder and import shims applied in
the child only (reconcile.drift, `reconcile matrix`). The records come back stamped with the model's identity
(runner.stamp) and named by the requested release (drift.checked), with the CPU seconds the job's process used.
"""
from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from .. import identity, jobs as procs, runner
from ..records import Record
from ..spec import ModelSpec, registry_of


@dataclass(frozen=True)
class ToolJob:
    key: str  # the result-cache key (reconcile.store.job_key): model spec with its sources, tool, release, code
    tool: str
    release: str  # the tool's version the job runs (the venv's own, or a prepared folder's)
    spec: ModelSpec
    timeout: float
    memory: int  # bytes a job process may map beyond what it holds at its start (jobs.cap_memory)
    extra_path: tuple[str, ...] = ()
    shims: tuple[str, ...] = ()

    def runner_job(self) -> runner.Job:
        return runner.Job(self.tool, self.spec, self.extra_path, self.shims)

    def describe(self) -> str:
        return f"{self.tool} {self.release} on {self.spec.name}"


@dataclass(frozen=True)
class JobResult:
    key: str
    records: tuple[Record, ...]
    cpu_s: float  # user + system CPU of the job's process (its children that were waited for included)
    wall_s: float
    host: str  # where it ran (a cluster's node)


def _child(rjob: runner.Job) -> runner.Outcome:
    """In the job's process: the model's layer IR from the disk cache, traced and kept there by the first job of
    the model (the tools that read the IR, and the front end's layer kinds, then skip the trace: the builtin
    runner shares it through its worker's memory instead), then the job as the runner runs it."""
    from .. import cache, models

    framework = models.canonical_framework(rjob.spec)
    if framework == "torch":
        try:
            models.remember_ir(rjob.spec, framework, cache.layer_ir(rjob.spec, framework))
        except Exception:  # noqa: BLE001 (the tool traces again, and its own row says why that fails)
            pass
    return runner._child(rjob)


def run_tool_job(job: ToolJob) -> JobResult:
    """Run one job in a forked child of this (worker) process; every failure is a row, never an exception."""
    from ..drift import checked

    rjob = job.runner_job()
    started, before = time.monotonic(), os.times()
    records = runner.precheck(rjob)
    if records is None:
        state, result = procs.fork_call(_child, (rjob,), job.timeout, memory=job.memory)
        if state == "timeout":
            records = runner._timeout_rows(rjob, job.timeout)
        elif state == "died" or not isinstance(result, runner.Outcome):
            records = runner._died_rows(rjob, result if state == "died" else None)
        else:
            records = result.records
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    records = runner.stamp(records, job.spec, identity.identify(job.spec))
    if job.extra_path:
        records = checked(records, job.release)
    return JobResult(job.key, tuple(records), round(cpu, 3), round(time.monotonic() - started, 3),
                     socket.gethostname())


TORCH_TOOLS = frozenset(runner.TOOL_IMPORTS) - {"tf_profiler"}


def registries_of(specs) -> frozenset:
    """The model registries the specs build from (what `warm` imports besides torch and the tools: sweep._warm)."""
    return frozenset(registry_of(spec.name) for spec in specs) - {None}


def warm(registries: frozenset = frozenset()) -> None:
    """Import torch, the front end and the venv's torch-side tools once in a worker (runner._warm), and the
    libraries the jobs' models build from (transformers: ~1 s a job otherwise), so the jobs it forks start warm.
    An older release still wins in its job: shims.put_first forgets preloaded modules."""
    runner._warm("torch", TORCH_TOOLS)
    if registries:
        from .. import sweep

        try:
            sweep._warm(set(registries))
        except Exception:  # noqa: BLE001 (each job imports again, and its row says why that fails)
            pass
    _first_forward()


def _first_forward() -> None:
    """torch's first convolution, fx trace and dispatch mode in a process cost ~1-2 s of one-time set-up; paid
    here, on a two-layer net of our own, every job forked afterwards starts past it."""
    import torch

    from ..frontends import torch_ir

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8, 2))
    with torch.no_grad():
        torch_ir.from_module(net, (1, 1, 4, 4), "warm-up", {})
