"""Run (tool, model) jobs in isolation and collect their records.

Why processes: torchstat patches `nn.Module.__call__` for good, thop adds buffers to modules, a tool can hang or
crash. Why workers: `import torch` (~1.5 s) and `import tensorflow` (~3 s) dominate small runs, so each is paid
once per run. Layout:
  - one worker per process group (adapters' WORKER: "torch", "tf", "pure"), started only if a job needs it;
  - the torch and pure workers import their framework once, then fork a fresh child per job (isolation for
    free: the child's patches die with it), killing the child at the timeout;
  - the tf worker runs its jobs in-process (TensorFlow is not fork-safe once initialised); the parent kills and
    restarts it if a job overruns the timeout.
The two framework workers run concurrently (the machines have 2 cores). A crash, timeout, missing tool or a
model the tool cannot read becomes status rows; the other jobs still finish.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import sys
import time
import traceback
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from typing import Callable, Optional

from . import adapters, shims
from .models import ModelSpec
from .records import ERROR, SKIPPED, Emitter, Record

DEFAULT_TIMEOUT_S = 120.0
_CTX = mp.get_context("fork")


@dataclass(frozen=True)
class Job:
    tool: str
    spec: ModelSpec
    # Version matrix (reconcile/drift.py): folders put first on sys.path and named import shims
    # (reconcile/shims.py), both applied only in the job's forked child, so one worker can run many releases.
    extra_path: tuple[str, ...] = ()
    shims: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"{self.tool} on {self.spec.name}"


def framework_for(tool_module, spec: ModelSpec) -> Optional[str]:
    """Which form of the model the tool reads, or None if the model has no such form."""
    wanted = tool_module.FRAMEWORK
    if wanted == "ir":
        return "torch" if spec.torch_factory else ("caffe" if spec.prototxt else None)
    return wanted if wanted in spec.frameworks else None


_FORM_NAMES = {"torch": "PyTorch definition", "keras": "Keras twin", "caffe": "Caffe prototxt"}


def _emitter(job: Job, framework: str) -> Emitter:
    module = adapters.get(job.tool)
    with shims.on_path(job.extra_path):  # the version of the release the job runs, even in a timeout row
        version = module.version()
    return Emitter(job.spec.name, framework, job.tool, version)


def precheck(job: Job) -> Optional[list[Record]]:
    """Status rows for a job that cannot run at all (tool missing, model lacks the form the tool reads)."""
    module = adapters.get(job.tool)
    framework = framework_for(module, job.spec)
    if framework is None:
        emit = Emitter(job.spec.name, module.FRAMEWORK, job.tool, module.version())
        form = _FORM_NAMES.get(module.FRAMEWORK, module.FRAMEWORK)
        return [emit.status(SKIPPED, f"model {job.spec.name!r} has no {form}; {job.tool} reads only that")]
    reason = None if job.extra_path else module.unavailable()  # a matrix job brings its own install
    if reason:
        return [_emitter(job, framework).status(SKIPPED, reason)]
    return None


def execute(job: Job) -> list[Record]:
    """Run one job in this process; an exception becomes one error row."""
    module = adapters.get(job.tool)
    emit = _emitter(job, framework_for(module, job.spec))
    try:
        return list(module.count(job.spec, emit))
    except Exception as exc:  # the tool crashed: record it, the run goes on
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return [emit.status(ERROR, f"{type(exc).__name__}: {detail} (at {os.path.basename(where.filename)}:"
                                   f"{where.lineno})")]


def _timeout_rows(job: Job, timeout: float) -> list[Record]:
    module = adapters.get(job.tool)
    emit = _emitter(job, framework_for(module, job.spec))
    return [emit.status(ERROR, f"timed out after {timeout:g} s; killed")]


def _silence() -> None:
    """Tools print warnings and tables; keep them out of the progress lines (adapters that parse a tool's
    printout capture sys.stdout themselves, which still works). RECONCILE_DEBUG=1 keeps them."""
    if os.environ.get("RECONCILE_DEBUG"):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)


def _single_threaded() -> None:
    """A process forked after its parent ran torch ops inherits a used OpenMP pool, and its first parallel
    region hangs (libgomp is not fork-safe). Counting needs no parallelism: stay on one thread."""
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def _child(conn: Connection, job: Job) -> None:
    _single_threaded()
    if job.extra_path or job.shims:
        shims.put_first(job.extra_path)
        shims.apply(job.shims)
    records = execute(job)
    if job.shims:
        records = [replace(r, message=shims.note(r.message)) for r in records]
    conn.send(records)
    conn.close()


def _run_forked(job: Job, timeout: float) -> list[Record]:
    receive, send = _CTX.Pipe(duplex=False)
    child = _CTX.Process(target=_child, args=(send, job), daemon=True)
    child.start()
    send.close()
    records: Optional[list[Record]] = None
    answered = receive.poll(timeout)  # True on a result and on EOF (the child died)
    if answered:
        try:
            records = receive.recv()
        except EOFError:
            records = None
    child.join(5 if answered else 0)
    if child.is_alive():
        child.kill()
        child.join()
        if not answered:
            return _timeout_rows(job, timeout)
    if records is None:
        emit = _emitter(job, framework_for(adapters.get(job.tool), job.spec))
        return [emit.status(ERROR, f"the tool's process died (exit code {child.exitcode}) without a result")]
    return records


# ---------------------------------------------------------------------------- worker warm-up (before forking)
# What each tool's job imports, paid once in the worker instead of once per forked job (calflops pulls in
# transformers, ~1.4 s; deepspeed ~0.6 s; thop and torchstat ~0.25 s each); only the tools the run has jobs for.
# ultralytics_thop is left out: it imports its own `thop` from outside the venv, inside its job
# (reconcile/adapters/ultralytics_thop.py). A matrix job's older release still wins: shims.put_first forgets
# the preloaded modules in its child.
FRAMEWORK_IMPORTS = {"torch": ("torch", "torch.fx", "reconcile.frontends.torch_ir"),
                     # the TF worker runs its jobs in-process: this moves the cost out of the first job's timeout
                     "tf": ("tensorflow", "keras", "reconcile.frontends.keras_ir", "reference_models.keras_models")}
TOOL_IMPORTS = {
    "thop": ("thop",), "torchstat": ("torchstat",), "torchsummary": ("torchsummary",), "fvcore": ("fvcore.nn",),
    "ptflops_pytorch": ("ptflops", "ptflops.pytorch_engine"), "ptflops_aten": ("ptflops", "ptflops.aten_engine"),
    "torchinfo": ("torchinfo",), "torch_flop_counter": ("torch.utils.flop_counter",), "calflops": ("calflops",),
    "deepspeed": ("deepspeed.profiling.flops_profiler",),
    "tf_profiler": ("tensorflow.python.profiler.internal.flops_registry", "tensorflow.python.profiler.model_analyzer",
                    "tensorflow.python.profiler.option_builder", "tensorflow.python.framework.convert_to_constants"),
}


def _warm(group: str, tools: frozenset = frozenset()) -> None:
    """Import the group's framework and the run's tools of the group (with their adapters) once; forked jobs
    inherit them. A tool that is not installed or fails to import is skipped here: its job says so itself."""
    import importlib

    if group == "tf":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "deepspeed" in tools:
        os.environ.setdefault("DS_ACCELERATOR", "cpu")  # as reconcile/adapters/deepspeed.py sets before importing
    names = FRAMEWORK_IMPORTS.get(group, ()) + tuple(n for tool in sorted(tools) for n in TOOL_IMPORTS.get(tool, ()))
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 (ImportError, or a tool broken at import: its own job says how)
            if name in ("torch", "tensorflow"):
                return
    for tool in sorted(tools):
        adapters.get(tool).unavailable()  # the adapter module and its own imports and metadata look-ups


def _serve(conn: Connection, group: str, timeout: float, tools: frozenset = frozenset()) -> None:
    _silence()
    _single_threaded()
    _warm(group, tools)
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        records = execute(job) if group == "tf" else _run_forked(job, timeout)
        conn.send(records)


class _Worker:
    def __init__(self, group: str, timeout: float, tools: frozenset = frozenset()):
        self.group, self.timeout, self.tools = group, timeout, tools  # tools: what _warm imports
        self.job: Optional[Job] = None
        self.started = 0.0
        self.fresh = True  # the first job of a TF worker also pays `import tensorflow`
        self._start()

    def _start(self) -> None:
        self.fresh = True
        self.conn, child_conn = _CTX.Pipe()
        # not a daemon: it forks a child per job (daemons may not); close() always reaps it
        self.process = _CTX.Process(target=_serve, args=(child_conn, self.group, self.timeout, self.tools))
        self.process.start()
        child_conn.close()

    def submit(self, job: Job) -> None:
        self.job, self.started = job, time.monotonic()
        self.conn.send(job)

    def deadline(self) -> float:
        # forked jobs are killed by the worker itself; the margin only guards against a stuck worker
        margin = 0 if self.group == "tf" else 30
        warm = 60 if self.group == "tf" and self.fresh else 0
        return self.started + self.timeout + margin + warm

    def collect(self) -> list[Record]:
        job, self.job, self.fresh = self.job, None, False
        try:
            return self.conn.recv()
        except EOFError:  # the worker itself died (e.g. a segfault inside TensorFlow)
            code = self.process.exitcode
            self.process.join()
            self._start()
            emit = _emitter(job, framework_for(adapters.get(job.tool), job.spec))
            return [emit.status(ERROR, f"the tool's process died (exit code {code}) without a result")]

    def kill_and_restart(self) -> list[Record]:
        job = self.job
        self.process.kill()
        self.process.join()
        self._start()
        self.job = None
        return _timeout_rows(job, self.timeout)

    def close(self) -> None:
        try:
            self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()


Progress = Callable[[int, int, Job, list[Record], float], None]


def run_jobs(jobs: list[Job], timeout: float = DEFAULT_TIMEOUT_S, progress: Optional[Progress] = None) \
        -> list[Record]:
    """Run every job; return all records in job order (deterministic whatever the completion order)."""
    results: dict[int, list[Record]] = {}
    pending: dict[str, list[tuple[int, Job]]] = {}
    done = 0

    def finish(index: int, job: Job, records: list[Record], seconds: float) -> None:
        nonlocal done
        results[index] = records
        done += 1
        if progress:
            progress(done, len(jobs), job, records, seconds)

    for index, job in enumerate(jobs):
        early = precheck(job)
        if early is not None:
            finish(index, job, early, 0.0)
        else:
            pending.setdefault(adapters.get(job.tool).WORKER, []).append((index, job))

    # TF first: its worker is forked before this process might import torch.
    workers = {group: _Worker(group, timeout, frozenset(job.tool for _, job in pending[group]))
               for group in sorted(pending, key=lambda g: g != "tf")}
    indices: dict[str, int] = {}
    try:
        for group, worker in workers.items():
            index, job = pending[group].pop(0)
            indices[group] = index
            worker.submit(job)
        while any(w.job is not None for w in workers.values()):
            busy = {w.conn: g for g, w in workers.items() if w.job is not None}
            now = time.monotonic()
            wait_s = max(0.1, min(workers[g].deadline() for g in busy.values()) - now)
            ready = wait(list(busy), timeout=wait_s)
            for group in busy.values():
                worker = workers[group]
                job = worker.job
                if worker.conn in ready:
                    records = worker.collect()
                elif time.monotonic() > worker.deadline():
                    records = worker.kill_and_restart()
                else:
                    continue
                finish(indices[group], job, records, time.monotonic() - worker.started)
                if pending[group]:
                    index, next_job = pending[group].pop(0)
                    indices[group] = index
                    worker.submit(next_job)
    finally:
        for worker in workers.values():
            worker.close()
    return [record for index in range(len(jobs)) for record in results[index]]
