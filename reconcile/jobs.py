"""Job processes, below any model or tool: fork a child with a timeout and a memory cap, keep process groups
and pipe ends tidy, and run a check as a job (`call_in_job`). reconcile.runner builds its workers and (tool,
model) jobs on these; spec resolution (the hf: size probe) uses `call_in_job` directly, so nothing here imports
models, adapters or the cache.

Limits: a job child may map `memory_cap()` bytes beyond what it holds when it starts (RLIMIT_AS; --memory through
`limits`, $RECONCILE_MEMORY, else DEFAULT_MEMORY_SHARE of this machine's RAM, at least MIN_DEFAULT_MEMORY): an
allocation beyond it fails at once and is reported as running out of memory (reconcile.memory), never as a
timeout or a rejected input shape. A check's timeout is the command's --timeout (`command_timeout`).

Processes die with their parent: each child closes the pipe ends it inherited, asks the kernel for a signal
when its parent dies (prctl PR_SET_PDEATHSIG; a watchdog thread elsewhere), and runs in its own process group,
killed whole at its timeout and when it ends, so processes a user's code spawned die too.
"""
from __future__ import annotations

import contextlib
import gc
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Callable, Optional

from .errors import UserError
from .memory import CAPPED, is_out_of_memory, out_of_memory_text, status_bytes
from .validate import check_timeout, memory_text, parse_memory, physical_memory

MEMORY_ENV = "RECONCILE_MEMORY"
DEFAULT_MEMORY_SHARE = 0.5  # of the machine's RAM, per job process: two torch lanes may run at once
MIN_DEFAULT_MEMORY = 2 * 2 ** 30
CTX = mp.get_context("fork")

# The command's own limits (its --timeout and --memory), for the jobs it starts outside run_jobs' arguments: spec
# checks (call_in_job) and traces outside a run. Set with `limits`, which restores them afterwards.
_LIMITS: dict[str, Any] = {"timeout": None, "memory": None}


@contextlib.contextmanager
def limits(timeout: Optional[float] = None, memory: Optional[int] = None):
    saved = dict(_LIMITS)
    if timeout is not None:
        _LIMITS["timeout"] = check_timeout(timeout)
    if memory is not None:
        _LIMITS["memory"] = int(memory)
    try:
        yield
    finally:
        _LIMITS.update(saved)


def memory_cap() -> int:
    """Bytes a job process may map beyond what it holds at its start: `limits(memory=...)` (--memory),
    $RECONCILE_MEMORY, else DEFAULT_MEMORY_SHARE of this machine's RAM (at least MIN_DEFAULT_MEMORY)."""
    if _LIMITS["memory"]:
        return _LIMITS["memory"]
    if os.environ.get(MEMORY_ENV):
        return parse_memory(os.environ[MEMORY_ENV], f"${MEMORY_ENV}")
    return max(int(physical_memory() * DEFAULT_MEMORY_SHARE), MIN_DEFAULT_MEMORY)


def command_timeout(default: float) -> float:
    """The command's --timeout (`limits`), else `default`."""
    return _LIMITS["timeout"] or default


def cap_memory(limit: Optional[int]) -> None:
    """Let this process (a job child, or the TF worker that runs its jobs in-process) map at most `limit` bytes
    beyond what it holds now (RLIMIT_AS = its current size + limit): what a job may allocate does not depend on
    how large the process it was forked from had grown."""
    if not limit:
        return
    base = status_bytes("VmSize")
    try:
        import resource

        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        total = base + limit
        resource.setrlimit(resource.RLIMIT_AS, (total if hard == resource.RLIM_INFINITY else min(total, hard), hard))
    except (ImportError, ValueError, OSError):
        return  # no rlimits here: the job runs uncapped
    CAPPED.update(cap=limit, base=base)


def died(exitcode: Optional[int]) -> str:
    """How a process ended, for a message: "exit code 3" / "killed by SIGSEGV"."""
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


def cap_hint(exitcode: Optional[int]) -> str:
    """A process that aborted may have met the memory cap inside C++ code (an uncaught std::bad_alloc): say what
    the cap was."""
    if exitcode is not None and exitcode == -signal.SIGABRT:
        return f" (if it ran out of memory: its cap was {memory_text(memory_cap())}; --memory sets it)"
    return ""


def silence() -> None:
    """Tools print warnings and tables; keep them out of the progress lines (adapters that parse a tool's
    printout capture sys.stdout themselves, which still works). RECONCILE_DEBUG=1 keeps them."""
    if os.environ.get("RECONCILE_DEBUG"):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)


def single_threaded() -> None:
    """A process forked after its parent ran torch ops inherits a used OpenMP pool, and its first parallel
    region hangs (libgomp is not fork-safe). Counting needs no parallelism: stay on one thread."""
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


# ------------------------------------------------------------------------------------------ process hygiene
# Pipe ends this process holds as a parent. A forked child closes its copies first thing: a worker holding the
# parent's end of its own pipe (or of another worker's) never sees end-of-file when the parent dies.
PARENT_ENDS: list[Connection] = []
# The process group of the job child a worker is running, killed whole when the worker is told to stop.
JOB_GROUP: Optional[int] = None
_PR_SET_PDEATHSIG = 1


def close_inherited(*extra: Connection) -> None:
    for conn in list(PARENT_ENDS) + list(extra):
        try:
            conn.close()
        except OSError:
            pass
    PARENT_ENDS.clear()


def die_with_parent(sig: int) -> None:
    """Have the kernel send `sig` to this process when its parent exits (Linux prctl PR_SET_PDEATHSIG); where
    that is unavailable, a watchdog thread polls getppid. Checked once more after arming: the parent may already
    be gone (this process then belongs to init)."""
    parent = os.getppid()
    armed = False
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if not armed:
        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(0.5)
            os.kill(os.getpid(), sig)

        threading.Thread(target=watch, name="reconcile-parent-watchdog", daemon=True).start()
    if os.getppid() != parent:
        os.kill(os.getpid(), sig)


def own_group(pid: int) -> None:
    """Make `pid` the leader of a new process group (called by both parent and child: whichever runs first
    wins the race, and a kill of the group never misses the child)."""
    try:
        os.setpgid(pid, pid)
    except OSError:  # already done by the other side, or the child already exited
        pass


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError, OSError):
        pass


def stop_worker(signum, frame) -> None:
    """A worker told to stop (its parent died: PDEATHSIG; or a kill): its job's whole group goes first."""
    if JOB_GROUP is not None:
        kill_group(JOB_GROUP)
    os._exit(128 + signum)


def become_worker(memory: Optional[int] = None) -> None:
    """A warm worker process (runner, sweep, builtin engine): its own process group, no inherited descriptors, stops
    (its current job's group first) on a signal or when its parent dies, quiet; `memory`: the cap of the jobs it
    forks."""
    global WORKER_MEMORY
    own_group(0)
    close_inherited()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop_worker)
    die_with_parent(signal.SIGTERM)
    silence()
    WORKER_MEMORY = memory


def jobs_from(conn: Connection):
    """A worker's jobs as its parent sends them, until it sends None or closes the pipe."""
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        yield job


def _job_main(send: Connection, receive: Connection, inherited: tuple, fn: Callable, args: tuple,
              memory: Optional[int] = None) -> None:
    """First code of a job child: its own process group, dies with its worker, holds no foreign pipe ends, runs
    under the memory cap."""
    own_group(0)
    close_inherited(receive, *inherited)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    die_with_parent(signal.SIGKILL)
    single_threaded()
    if not os.environ.get("RECONCILE_DEBUG"):  # a crash is reported as a row; no dump on an inherited stderr
        import faulthandler

        faulthandler.disable()
    cap_memory(memory)
    result = fn(*args)
    send.send(result)
    send.close()


def start_process(process) -> None:
    """process.start() with this process's objects frozen out of the garbage collector while it forks: the
    child's first full collection would otherwise walk every object the parent holds, copying its memory page by
    page (a lenet trace in a job: 0.54 s once the parent has imported TensorFlow, 0.10 s frozen)."""
    gc.freeze()
    try:
        process.start()
    finally:
        gc.unfreeze()


def fork_call(fn: Callable, args: tuple, timeout: float, inherited: tuple = (),
              memory: Optional[int] = None) -> tuple[str, Any]:
    """Run fn(*args) in a forked child (its own process group) with a timeout and a memory cap (bytes of address
    space; None: the cap of the worker this runs in, else `memory_cap()`). Returns ("ok", result), ("timeout",
    None) or ("died", exitcode). The child's group is killed when the call ends, whatever happened, so nothing the
    child spawned outlives it."""
    global JOB_GROUP
    receive, send = CTX.Pipe(duplex=False)
    if memory is None:
        memory = WORKER_MEMORY if WORKER_MEMORY is not None else memory_cap()
    child = CTX.Process(target=_job_main, args=(send, receive, inherited, fn, args, memory), daemon=True)
    start_process(child)
    own_group(child.pid)
    JOB_GROUP = child.pid
    send.close()
    try:
        if not receive.poll(timeout):
            return "timeout", None
        try:
            return "ok", receive.recv()
        except (EOFError, OSError):
            child.join(5)  # died on its own: let it finish dying for its exit code
            return "died", child.exitcode
        except Exception as exc:  # a result that does not unpickle
            return "ok", exc
    finally:
        kill_group(child.pid)
        JOB_GROUP = None
        child.join(5)
        receive.close()


# ------------------------------------------------------------------------------------------------ checks as jobs
WORKER_MEMORY: Optional[int] = None  # in a worker (reconcile.runner): the memory cap of the jobs it forks


@dataclass(frozen=True)
class CallResult:
    state: str  # "ok", "error" (fn raised: `value` is the message), "timeout", "died" (`value`: exit code)
    value: Any = None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def _call(fn: Callable, args: tuple) -> CallResult:
    try:
        return CallResult("ok", fn(*args))
    except UserError as exc:
        return CallResult("error", str(exc))
    except Exception as exc:  # noqa: BLE001 (reported as one line by call_in_job)
        if is_out_of_memory(exc):
            return CallResult("error", out_of_memory_text(exc))
        return CallResult("error", f"{type(exc).__name__}: {first_line(exc)}")


def call_in_job(fn: Callable, args: tuple, what: str, default_timeout: float = 120.0) -> Any:
    """fn(*args) in a child of this process, with the command's timeout and memory cap (`limits`): fn's
    UserError, a crash, a timeout or running out of memory becomes a UserError of one line naming `what`. fn and
    what it returns must pickle (a module-level function, plain data)."""
    timeout = command_timeout(default_timeout)
    state, result = fork_call(_call, (fn, args), timeout, memory=memory_cap())
    if state == "ok" and isinstance(result, CallResult) and result.state == "ok":
        return result.value
    if state == "ok" and isinstance(result, CallResult):
        message = str(result.value)
        raise UserError(message if message.startswith(what) else f"{what}: {message}")
    if state == "timeout":
        raise UserError(f"{what}: timed out after {timeout:g} s (--timeout); killed")
    code = result if state == "died" else None
    raise UserError(f"{what}: its process died ({died(code)}) without a result{cap_hint(code)}")
