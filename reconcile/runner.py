"""Run (tool, model) jobs in isolation and collect their records.

Why processes: torchstat patches `nn.Module.__call__` for good, thop adds buffers to modules, a tool can hang or
crash. Why workers: `import torch` (~1.5 s) and `import tensorflow` (~3 s) dominate small runs, so each is paid
once per run. Layout:
  - one worker per process group (adapters' WORKER: "torch", "tf", "pure"), started only if a job needs it, and
    TORCH_LANES torch workers, each model's jobs on one of them (the TF side finishes early);
  - the torch and pure workers import their framework once, then fork a fresh child per job (isolation for
    free: the child's patches die with it), killing the child at the timeout;
  - the tf worker runs its jobs in-process (TensorFlow is not fork-safe once initialised); the parent kills and
    restarts it if a job overruns the timeout.
The workers run concurrently (the machines have 2 cores). A crash, timeout, missing tool or a
model the tool cannot read becomes status rows; the other jobs still finish.

User code (a model's factory and forward, a tool) runs only in job processes, never in the parent:
  - an IR job traces a model to its layer IR (models.layer_ir) in a forked child with the timeout and ships the
    picklable Model back. In a run, each model is traced once, by the torch worker, before the tool jobs of
    that model: the worker keeps the Model in models' IR cache, so every tool child forked afterwards inherits
    it. The parent gets the Models for the report (`irs`); `trace_irs` does the same outside a run (formulas,
    explain() on loaded records, which).
  - a model whose IR job raises a user error, times out or kills its process is not run by any tool: its jobs
    become error rows naming the reason (one timeout per model, not one per tool).
Every job child runs under the memory cap (reconcile.jobs.memory_cap: --memory, $RECONCILE_MEMORY, else half the
machine's RAM), as does the TF worker that runs its jobs in-process: a job above it becomes an error row saying it
ran out of memory, with the cap and the size it reached (reconcile.memory), not a timeout and not the kernel's OOM
killer. The process primitives (fork_call, process groups, death signals) live in reconcile.jobs.

Processes die with their parent: each worker and job child closes the pipe ends it inherited, asks the kernel
for a signal when its parent dies (prctl PR_SET_PDEATHSIG; a watchdog thread elsewhere), and every job runs in
its own process group, killed whole at its timeout and when it ends, so processes a user's forward spawned die
too.
"""
from __future__ import annotations

import atexit
import multiprocessing as mp
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from typing import Callable, Optional, Union

from conventions.ir import Model

from . import adapters, identity, jobs as procs, shims
from .errors import UserError
from .jobs import fork_call, memory_cap
from .memory import is_out_of_memory, out_of_memory_text
from .records import ERROR, SKIPPED, Emitter, Record
from .spec import ModelSpec
from .validate import check_timeout  # noqa: F401  (callers check timeouts through the runner too)

DEFAULT_TIMEOUT_S = 120.0
TORCH_LANES = 2  # torch workers of a run (the machines have 2 cores; the TF worker is done early)
TRACE_TIMEOUT_S = DEFAULT_TIMEOUT_S  # tracing outside a run (explain() on loaded records, which): no --timeout there
_CTX = procs.CTX


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


@dataclass(frozen=True)
class Outcome:
    """What a tool job sends back: its records and the user files its process had imported (identity.user_files;
    the cache keeps them with the records and checks them before serving them)."""
    records: list[Record]
    imports: tuple[tuple[str, str], ...] = ()


def stamp(records: list[Record], spec: ModelSpec, ident: Optional[identity.Identity] = None) -> list[Record]:
    """The job's records labelled with its model's identity: input shape, batch and source hash (records.py)."""
    ident = ident or identity.identify(spec)
    shape = "x".join(map(str, spec.input_shape))
    return [replace(r, input_shape=shape, batch=ident.batch, source_hash=ident.source_hash) for r in records]


_first_line = procs.first_line
_died, _silence = procs.died, procs.silence  # (the names other modules call them by, e.g. reconcile/training.py)


def execute(job: Job) -> list[Record]:
    """Run one job in this process; an exception (or sys.exit) becomes one error row."""
    module = adapters.get(job.tool)
    emit = _emitter(job, framework_for(module, job.spec))
    try:
        return list(module.count(job.spec, emit))
    except (Exception, SystemExit) as exc:  # the tool (or the model) crashed or exited: record it, the run goes on
        if is_out_of_memory(exc):
            return [emit.status(ERROR, out_of_memory_text(exc))]
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        at = f" (at {os.path.basename(where.filename)}:{where.lineno})" if where else ""
        detail = f"sys.exit({exc.code!r}) called" if isinstance(exc, SystemExit) else _first_line(exc)
        return [emit.status(ERROR, f"{type(exc).__name__}: {detail}{at}")]


def _timeout_rows(job: Job, timeout: float) -> list[Record]:
    module = adapters.get(job.tool)
    emit = _emitter(job, framework_for(module, job.spec))
    return [emit.status(ERROR, f"timed out after {timeout:g} s; killed")]


def _died_rows(job: Job, exitcode: Optional[int]) -> list[Record]:
    emit = _emitter(job, framework_for(adapters.get(job.tool), job.spec))
    return [emit.status(ERROR, f"the tool's process died ({procs.died(exitcode)}) without a result"
                               f"{procs.cap_hint(exitcode)}")]


def _child(job: Job) -> Outcome:
    if job.extra_path or job.shims:
        shims.put_first(job.extra_path)
        shims.apply(job.shims)
    records = execute(job)
    if job.shims:
        records = [replace(r, message=shims.note(r.message)) for r in records]
    return Outcome(records, identity.user_files())


def _run_forked(job: Job, timeout: float, inherited: tuple = ()) -> Union[Outcome, list[Record]]:
    state, result = fork_call(_child, (job,), timeout, inherited)
    if state == "timeout":
        return _timeout_rows(job, timeout)
    if state == "died" or not isinstance(result, Outcome):
        return _died_rows(job, result if state == "died" else None)
    return result


# ------------------------------------------------------------------------------------------------- IR jobs
@dataclass(frozen=True)
class IRJob:
    """Trace one model to its layer IR (models.layer_ir) in a job process."""
    spec: ModelSpec
    framework: str

    def describe(self) -> str:
        return f"tracing {self.spec.name} ({self.framework})"


@dataclass(frozen=True)
class IRResult:
    model: Optional[Model]
    error: str = ""  # why there is no IR, one line
    fatal: bool = False  # the model itself is broken (its factory or forward raised, hung or died)


def _trace(spec: ModelSpec, framework: str) -> IRResult:
    from . import cache

    try:
        return IRResult(cache.layer_ir(spec, framework))  # kept on disk under the model's and code's fingerprints
    except UserError as exc:
        return IRResult(None, str(exc), fatal=True)
    except SystemExit as exc:
        return IRResult(None, f"model {spec.name!r}: the model called sys.exit({exc.code!r}) while being traced",
                        fatal=True)
    except Exception as exc:  # the front end failed on a model that runs: tools may still count it
        if is_out_of_memory(exc):  # the cap, met by the front end after the forward passed
            return IRResult(None, out_of_memory_text(exc, f"model {spec.name!r}: tracing"), fatal=True)
        return IRResult(None, f"model {spec.name!r}: tracing to the layer IR failed: {type(exc).__name__}: "
                              f"{_first_line(exc)}")


def _run_ir(job: IRJob, timeout: float, inherited: tuple = ()) -> IRResult:
    from . import models

    if job.framework == "caffe":  # parsing a prototxt runs no user code, and is bounded in size and time
        result = _trace(job.spec, job.framework)
    else:
        state, result = fork_call(_trace, (job.spec, job.framework), timeout, inherited)
        if state == "timeout":
            result = IRResult(None, f"model {job.spec.name!r}: tracing timed out after {timeout:g} s; killed "
                                    "(its factory or forward does not return)", fatal=True)
        elif state == "died":
            result = IRResult(None, f"model {job.spec.name!r}: the process tracing it died ({procs.died(result)}) "
                                    "in its factory or forward", fatal=True)
        elif not isinstance(result, IRResult):
            result = IRResult(None, f"model {job.spec.name!r}: its layer IR could not be shipped back ({result!r})")
    if result.model is not None:
        models.remember_ir(job.spec, job.framework, result.model)
    return result


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


def _serve(conn: Connection, group: str, timeout: float, tools: frozenset = frozenset(),
           memory: Optional[int] = None) -> None:
    procs.become_worker(memory)
    procs.single_threaded()
    if group == "tf":  # its jobs run in this process
        procs.cap_memory(memory)
    _warm(group, tools)
    for job in procs.jobs_from(conn):
        if isinstance(job, IRJob):
            result: Union[Outcome, list[Record], IRResult] = _run_ir(job, timeout, (conn,))
        elif group == "tf":
            records = execute(job)
            result = Outcome(records, identity.user_files())
        else:
            result = _run_forked(job, timeout, (conn,))
        conn.send(result)


Item = Union[Job, IRJob]


class _Worker:
    def __init__(self, group: str, timeout: float, tools: frozenset = frozenset()):
        self.group, self.timeout, self.tools = group, timeout, tools  # tools: what _warm imports
        self.memory = memory_cap()
        self.job: Optional[Item] = None
        self.started = 0.0
        self.fresh = True  # the first job of a TF worker also pays `import tensorflow`
        self._start()

    def _start(self) -> None:
        self.fresh = True
        self.conn, child_conn = _CTX.Pipe()
        procs.PARENT_ENDS.append(self.conn)
        # TensorFlow is not fork-safe once imported: a TF worker forked from a process that imported it (an API
        # user's, a test's) hangs in its first session; it starts afresh then (its own `import tensorflow`)
        context = mp.get_context("spawn") if self.group == "tf" and "tensorflow" in sys.modules else _CTX
        # not a daemon: it forks a child per job (daemons may not); close() always reaps it
        self.process = context.Process(target=_serve, args=(child_conn, self.group, self.timeout, self.tools,
                                                            self.memory))
        procs.start_process(self.process)
        procs.own_group(self.process.pid)
        child_conn.close()

    def submit(self, job: Item) -> None:
        self.job, self.started = job, time.monotonic()
        self.conn.send(job)

    def deadline(self) -> float:
        # forked jobs are killed by the worker itself; the margin only guards against a stuck worker
        margin = 0 if self.group == "tf" else 30
        warm = 60 if self.group == "tf" and self.fresh else 0
        return self.started + self.timeout + margin + warm

    def _failed(self, job: Item, reason: str, timed_out: bool) -> Union[list[Record], IRResult]:
        if isinstance(job, IRJob):
            return IRResult(None, f"model {job.spec.name!r}: {reason}", fatal=timed_out)
        if timed_out:
            return _timeout_rows(job, self.timeout)
        emit = _emitter(job, framework_for(adapters.get(job.tool), job.spec))
        return [emit.status(ERROR, reason)]

    def collect(self) -> Union[Outcome, list[Record], IRResult]:
        job, self.job, self.fresh = self.job, None, False
        try:
            return self.conn.recv()
        except (EOFError, OSError):  # the worker itself died (e.g. a segfault inside TensorFlow)
            self.process.join(5)
            code = self.process.exitcode
            self._kill()
            self._start()
            return self._failed(job, f"the tool's process died ({procs.died(code)}) without a result", False)

    def kill_and_restart(self) -> Union[list[Record], IRResult]:
        job = self.job
        self._kill()
        self._start()
        self.job = None
        return self._failed(job, f"timed out after {self.timeout:g} s; killed", True)

    def _kill(self) -> None:
        """Stop the worker and everything under it: SIGTERM lets it kill its job's group, then its own group."""
        if self.process.exitcode is None:
            procs.kill_group(self.process.pid, signal.SIGTERM)
            self.process.join(2)
        if self.process.exitcode is None:
            procs.kill_group(self.process.pid)
            self.process.join(5)
        self._forget_conn()

    def _forget_conn(self) -> None:
        if self.conn in procs.PARENT_ENDS:
            procs.PARENT_ENDS.remove(self.conn)
        self.conn.close()

    def close(self, abort: bool = False) -> None:
        if not abort:
            try:
                self.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            self.process.join(5)
        self._kill()


Progress = Callable[[int, int, Job, list[Record], float], None]


def _not_run_rows(job: Job, reason: str) -> list[Record]:
    emit = _emitter(job, framework_for(adapters.get(job.tool), job.spec))
    return [emit.status(ERROR, f"not run: {reason}")]


def plan_lanes(jobs: list[Job], runnable: list[bool], spread: bool = False) -> list[tuple[str, int, bool]]:
    """The queue of a run, in order: (worker lane, job index, is the model's IR job). Torch jobs run on
    TORCH_LANES workers: each model's jobs on one of them, or with `spread` every runnable torch job round the
    lanes whatever its model (one model's tools in parallel); the TF and pure jobs on their own worker. A model's
    IR job goes first in each torch lane that runs its torch jobs (that worker keeps the IR for the tool jobs it
    forks; a second lane finds it in the disk cache), and in the model's own lane when it has no torch job there."""
    model_names = list(dict.fromkeys(job.spec.name for job in jobs))
    groups = [adapters.get(job.tool).WORKER for job in jobs]
    spreading = [i for i, job in enumerate(jobs) if runnable[i] and groups[i] == "torch"] if spread else []
    lanes = max(1, min(TORCH_LANES, len(spreading) if spread else len(model_names)))
    lane_of = {name: f"torch#{i % lanes}" for i, name in enumerate(model_names)}
    spread_lane = {index: f"torch#{n % lanes}" for n, index in enumerate(spreading)}
    out: list[tuple[str, int, bool]] = []
    with_ir: set[tuple[str, str]] = set()
    for index, job in enumerate(jobs):
        torch_lane = spread_lane.get(index) or lane_of[job.spec.name]
        first_of_model = job.spec.name not in {name for name, _ in with_ir}
        if (job.spec.name, torch_lane) not in with_ir and (index in spread_lane or first_of_model):
            with_ir.add((job.spec.name, torch_lane))
            out.append((torch_lane, index, True))
        out.append((torch_lane if groups[index] == "torch" else groups[index], index, False))
    return out


def run_jobs(jobs: list[Job], timeout: float = DEFAULT_TIMEOUT_S, progress: Optional[Progress] = None,
             irs: Optional[dict[str, IRResult]] = None,
             imports: Optional[dict[int, tuple]] = None, spread: bool = False) -> list[Record]:
    """Run every job; return all records in job order (deterministic whatever the completion order), each
    labelled with its model's identity (`stamp`).

    Each model is first traced to its layer IR by an IR job in the torch worker (which keeps it for the tool
    jobs it forks afterwards); `irs`, when given, receives model name -> IRResult. A model whose tracing failed
    fatally is not run by any tool: its remaining jobs become error rows. `imports`, when given, receives job
    index -> the user files the job's process imported (identity.user_files), for the jobs that reported them.
    `spread`: torch jobs go round the TORCH_LANES workers whatever their model, each lane tracing (or loading from
    the cache) the IR of the models it runs first: one model's tools in parallel (`which --confirm`)."""
    from . import models

    timeout = check_timeout(timeout)
    results: dict[int, list[Record]] = {}
    pending: dict[str, list[tuple[int, Item]]] = {}
    done = 0
    traced: dict[str, IRResult] = {} if irs is None else irs
    identities = {job.spec.name: identity.identify(job.spec) for job in jobs}

    def finish(index: int, job: Job, result: Union[Outcome, list[Record]], seconds: float) -> None:
        nonlocal done
        if isinstance(result, Outcome):
            if imports is not None:
                imports[index] = result.imports
            result = result.records
        records = stamp(result, job.spec, identities[job.spec.name])
        results[index] = records
        done += 1
        if progress:
            progress(done, len(jobs), job, records, seconds)

    # Torch jobs run on TORCH_LANES workers, each model's jobs on one of them (its IR job first, so the worker keeps
    # the IR for the tool jobs it forks): the TF worker finishes early and both cores keep counting.
    early_rows = {index: precheck(job) for index, job in enumerate(jobs)}
    for lane, index, is_ir in plan_lanes(jobs, [early_rows[i] is None for i in range(len(jobs))], spread):
        job = jobs[index]
        if is_ir:
            framework = models.canonical_framework(job.spec)
            if framework is not None:
                pending.setdefault(lane, []).append((-1, IRJob(job.spec, framework)))
        elif early_rows[index] is not None:
            finish(index, job, Outcome(early_rows[index]), 0.0)  # nothing ran: no user file to check
        else:
            pending.setdefault(lane, []).append((index, job))

    def drop_model(name: str, reason: str) -> None:
        for group, queue in pending.items():
            kept = []
            for index, item in queue:
                if isinstance(item, Job) and item.spec.name == name:
                    finish(index, item, _not_run_rows(item, reason), 0.0)
                else:
                    kept.append((index, item))
            queue[:] = kept

    # TF first: its worker is forked before this process might import torch.
    workers: dict[str, _Worker] = {}
    indices: dict[str, int] = {}
    aborted = True
    try:
        for group in sorted(pending, key=lambda g: g != "tf"):  # (a lane: "torch#0", "torch#1", "tf", ...)
            tools = frozenset(job.tool for _, job in pending[group] if isinstance(job, Job))
            workers[group] = _Worker(group.split("#")[0], timeout, tools)
        for group, worker in workers.items():
            if pending[group]:
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
                    result = worker.collect()
                elif time.monotonic() > worker.deadline():
                    result = worker.kill_and_restart()
                else:
                    continue
                if isinstance(job, IRJob):
                    outcome = result if isinstance(result, IRResult) else IRResult(None, "no IR came back")
                    traced[job.spec.name] = outcome
                    if outcome.model is not None:  # the report and explain() in this process reuse it
                        models.remember_ir(job.spec, job.framework, outcome.model)
                    if outcome.fatal:
                        drop_model(job.spec.name, outcome.error)
                else:
                    finish(indices[group], job, result, time.monotonic() - worker.started)
                if pending[group]:
                    index, next_job = pending[group].pop(0)
                    indices[group] = index
                    worker.submit(next_job)
        aborted = False
    finally:
        for worker in workers.values():
            worker.close(abort=aborted)
    return [record for index in range(len(jobs)) for record in results[index]]


_TRACER: Optional[_Worker] = None  # one torch worker per process for IR jobs outside a run, started on demand


def _close_tracer() -> None:
    global _TRACER
    if _TRACER is not None:
        _TRACER.close()
        _TRACER = None


def _submit_to_tracer(item: Item, timeout: float):
    """One item on this process's trace worker (started on demand, restarted for another timeout or memory cap),
    its result or the worker's failure row."""
    global _TRACER
    if _TRACER is None or _TRACER.process.exitcode is not None or _TRACER.timeout != timeout \
            or _TRACER.memory != memory_cap():
        _close_tracer()
        _TRACER = _Worker("torch", timeout)
        atexit.register(_close_tracer)
    worker = _TRACER
    try:
        worker.submit(item)
        ready = wait([worker.conn], timeout=max(0.1, worker.deadline() - time.monotonic()))
        return worker.collect() if ready else worker.kill_and_restart()
    except BaseException:
        worker.close(abort=True)
        _TRACER = None
        raise


def trace_irs(requests: list[tuple[ModelSpec, str]], timeout: Optional[float] = None) -> list[IRResult]:
    """Trace models to their layer IR outside a run (formulas, explain() on loaded records, which): each in a
    job process with the timeout, forked by one torch worker that stays up for this process (torch imported
    once). A Caffe prototxt is parsed here (no user code)."""
    from . import models

    timeout = check_timeout(procs.command_timeout(TRACE_TIMEOUT_S) if timeout is None else timeout)
    out: list[IRResult] = []
    for spec, framework in requests:
        failed, given = models.IR_FAILURES.get(models.ir_key(spec, framework), ("", 0.0))
        # a model that crashed once, or hung for at least this long, is not traced again by this process
        if failed and ("timed out" not in failed or given >= timeout):
            out.append(IRResult(None, failed, fatal=True))
            continue
        if framework == "caffe":
            out.append(_run_ir(IRJob(spec, framework), timeout))
            continue
        result = _submit_to_tracer(IRJob(spec, framework), timeout)
        result = result if isinstance(result, IRResult) else IRResult(None, "no IR came back")
        if result.model is not None:
            models.remember_ir(spec, framework, result.model)
        elif result.fatal:
            models.IR_FAILURES[models.ir_key(spec, framework)] = (result.error, timeout)
        out.append(result)
    return out


def trace_ir(spec: ModelSpec, framework: str, timeout: Optional[float] = None) -> IRResult:
    return trace_irs([(spec, framework)], timeout)[0]
