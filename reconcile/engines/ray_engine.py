"""The Ray engine (`--engine ray`, the `.[cluster]` extra): each job is a Ray task.

Where: the cluster at --address / $RAY_ADDRESS (`ray start --head` on one machine, `ray start --address HEAD` on
the others), else a local cluster started for the sweep with one CPU per core and stopped at the end. The task
runs `fn(job)` in a Ray worker process, which forks the job's own process exactly as the builtin engine's workers
do (reconcile.engines.tooljob: timeout, process group, memory cap), so isolation and records are the same on both
engines. Ray workers are reused between tasks, so `warm` (torch and the tools imported) is paid once per worker.

Faults: a task whose worker process dies, or whose node is lost, is run once more by Ray (max_retries=RETRIES, on
any live node); if that fails too, the job's result is a `Failed` naming Ray's reason. Application errors are not
retried (`fn` turns them into rows itself). A task's result goes to the driver only, which writes it to the store
once: a retried task cannot write a row twice.

Code and environment: the workers import this project from the folder the driver imports it from (PYTHONPATH in
the job's runtime environment), and get the driver's RECONCILE_* variables. Tool releases come from prepared
folders (reconcile.drift installs, `Job.extra_path`), the same mechanism `reconcile matrix` uses: on a
multi-machine cluster that folder must be on a file system every node sees (the cache folder,
$RECONCILE_TOOL_CACHE).
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional

from ..errors import UserError
from . import RETRIES, Failed, Item, OnResult

ROOT = Path(__file__).resolve().parent.parent.parent
_WARMED: set[str] = set()  # the warm functions already run in this (Ray worker) process
POLL_S = 10.0  # how often the driver looks for a sweep that stopped moving
STALL_MARGIN_S = 300.0  # beyond the longest job timeout: no task result for this long means a task was lost


def _task(fn: Callable[[Any], Any], job: Any, warm: Optional[Callable[[], None]]) -> Any:
    """The body of every Ray task: warm this worker once, then the job (which forks its own process)."""
    from .. import jobs as procs

    name = repr(warm)  # a function (or partial) unpickled in this process is one object: its repr is stable here
    if warm is not None and name not in _WARMED:
        _WARMED.add(name)
        warm()
        procs.single_threaded()
    result = fn(job)
    if dataclasses.is_dataclass(result) and hasattr(result, "host"):  # which node of the cluster ran it
        import ray

        result = dataclasses.replace(result, host=f"{result.host}/{ray.get_runtime_context().get_node_id()[:12]}")
    return result


def import_ray():
    try:
        import ray
    except ImportError:
        raise UserError("--engine ray needs Ray: pip install -c constraints.txt '.[cluster]'") from None
    return ray


def runtime_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k.startswith("RECONCILE_")}
    path = [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(ROOT)]
    env["PYTHONPATH"] = os.pathsep.join(path)
    return {"env_vars": env}


class RayEngine:
    name = "ray"

    def __init__(self, address: Optional[str] = None, workers: Optional[int] = None):
        self.ray = import_ray()
        self.address = address
        self.local_cpus = max(1, int(workers or os.cpu_count() or 1))
        self.started_here = False
        self._connect()
        self.workers = int(self.ray.cluster_resources().get("CPU", 0)) or self.local_cpus

    def _connect(self) -> None:
        ray = self.ray
        if ray.is_initialized():
            return
        kwargs = dict(runtime_env=runtime_env(), log_to_driver=False, configure_logging=False,
                      include_dashboard=False)
        try:
            if self.address:
                ray.init(address=self.address, **kwargs)
            else:
                ray.init(num_cpus=self.local_cpus, **kwargs)
                self.started_here = True
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = self.address or "a local cluster"
            raise UserError(f"--engine ray: could not connect to {where}: {str(exc).strip().splitlines()[0]}") \
                from None

    def describe(self) -> str:
        nodes = len([n for n in self.ray.nodes() if n.get("Alive")])
        where = f"the cluster at {self.address}" if self.address else "a local cluster started for this sweep"
        return f"ray engine, {self.workers} CPU(s) on {nodes} node(s) of {where}"

    def results(self, fn: Callable[[Any], Any], items: Iterable[Item],
                warm: Optional[Callable[[], None]] = None) -> Iterator[tuple[str, Any]]:
        """Each job's result as it lands. A task the cluster holds without a result for longer than any job may
        take (its timeout plus STALL_MARGIN_S, with nothing else landing meanwhile) is cancelled and submitted
        once more; lost again, it is a `Failed` saying so (a wedged worker or a lost task never hangs the sweep)."""
        import time

        ray = self.ray
        remote = ray.remote(_task).options(num_cpus=1, max_retries=RETRIES, retry_exceptions=False)
        fn_ref, warm_ref = ray.put(fn), ray.put(warm)
        jobs = dict(items)
        pending = {remote.remote(fn_ref, job, warm_ref): key for key, job in jobs.items()}
        resubmitted: set[str] = set()
        stall_s = max((float(getattr(job, "timeout", 0) or 0) for job in jobs.values()), default=0.0) \
            + STALL_MARGIN_S
        last = time.monotonic()
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
                if not ready:
                    if time.monotonic() - last < stall_s:
                        continue
                    last = time.monotonic()
                    for ref, key in list(pending.items()):
                        ray.cancel(ref, force=True)
                        del pending[ref]
                        if key in resubmitted:
                            yield key, Failed(f"ray: no result after {stall_s:g} s, twice (the task was lost or its "
                                              "worker stopped answering)")
                        else:
                            resubmitted.add(key)
                            pending[remote.remote(fn_ref, jobs[key], warm_ref)] = key
                    continue
                last = time.monotonic()
                for ref in ready:
                    key = pending.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayError as exc:  # worker died / node lost, after the retry
                        result = Failed(f"ray: {type(exc).__name__}: {_first_line(exc)} (after {RETRIES} retry)")
                    yield key, result
        finally:
            for ref in pending:  # the driver stops early (an exception, ^C): do not leave tasks running
                ray.cancel(ref, force=True)

    def run(self, fn: Callable[[Any], Any], items: Iterable[Item], on_result: OnResult,
            warm: Optional[Callable[[], None]] = None) -> None:
        for key, result in self.results(fn, items, warm):
            on_result(key, result)

    def close(self) -> None:
        if self.ray.is_initialized():
            self.ray.shutdown()


def _first_line(exc: BaseException) -> str:
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()[:300]
    return ""
