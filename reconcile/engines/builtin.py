"""The built-in engine: warm worker processes on this machine (reconcile.jobs' process hygiene, as the runner's).

Each worker runs `warm` once (torch and the tools imported once per worker), then `fn(job)` for each job it is
sent; `fn` forks the job's own process (reconcile.engines.tooljob). A worker that dies mid-job (killed, or a crash that
took the worker down) is replaced and the job is run once more on the new one; a second death makes the job a
`Failed` with both reasons. Workers die with this process (PDEATHSIG; each in its own process group, killed whole
at close), so a killed driver leaves nothing running.
"""
from __future__ import annotations

import collections
import os
import signal
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Iterable, Iterator, Optional

from .. import jobs as procs
from . import RETRIES, Failed, Item, OnResult

DEFAULT_WORKERS = 2  # the machines have 2 cores (reconcile.runner.TORCH_LANES)


def _serve(conn: Connection, fn: Callable[[Any], Any], warm: Optional[Callable[[], None]]) -> None:
    procs.become_worker()
    procs.single_threaded()  # before warm: a torch inherited from the parent must not enter its used OpenMP pool
    if warm is not None:
        warm()
    procs.single_threaded()  # and a torch warm imported
    for job in procs.jobs_from(conn):
        try:
            result = fn(job)
        except Exception as exc:  # noqa: BLE001 (fn isolates user code itself; this is a bug of ours, one row)
            result = Failed(f"the job function raised {type(exc).__name__}: {procs.first_line(exc)}")
        conn.send(result)


class _Worker:
    def __init__(self, fn: Callable, warm: Optional[Callable]):
        self.fn, self.warm = fn, warm
        self.key: Optional[str] = None
        self.job: Any = None
        self._start()

    def _start(self) -> None:
        self.conn, child = procs.CTX.Pipe()
        procs.PARENT_ENDS.append(self.conn)
        # not a daemon: it forks a child per job (daemons may not)
        self.process = procs.CTX.Process(target=_serve, args=(child, self.fn, self.warm))
        procs.start_process(self.process)
        procs.own_group(self.process.pid)
        child.close()

    def submit(self, key: str, job: Any) -> None:
        self.key, self.job = key, job
        self.conn.send(job)

    def collect(self) -> tuple[bool, Any]:
        """(True, result), or (False, why the worker died); a dead worker is replaced."""
        try:
            return True, self.conn.recv()
        except (EOFError, OSError):
            self.process.join(5)
            reason = f"its worker process died ({procs.died(self.process.exitcode)})"
            self.stop()
            self._start()
            return False, reason

    def stop(self) -> None:
        if self.process.exitcode is None:
            procs.kill_group(self.process.pid, signal.SIGTERM)  # it kills its job's group first
            self.process.join(2)
        if self.process.exitcode is None:
            procs.kill_group(self.process.pid)
            self.process.join(5)
        if self.conn in procs.PARENT_ENDS:
            procs.PARENT_ENDS.remove(self.conn)
        self.conn.close()

    def close(self) -> None:
        try:
            self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.process.join(5)
        self.stop()


class BuiltinEngine:
    name = "builtin"

    def __init__(self, workers: Optional[int] = None):
        self.workers = max(1, int(workers or min(DEFAULT_WORKERS, os.cpu_count() or 1)))

    def describe(self) -> str:
        return f"builtin engine, {self.workers} worker process(es) on this machine"

    def results(self, fn: Callable[[Any], Any], items: Iterable[Item],
                warm: Optional[Callable[[], None]] = None) -> Iterator[tuple[str, Any]]:
        queue = collections.deque(items)
        deaths: dict[str, list[str]] = {}
        pool = [_Worker(fn, warm) for _ in range(min(self.workers, len(queue)))]
        try:
            for worker in pool:
                if queue:
                    worker.submit(*queue.popleft())
            while any(w.key is not None for w in pool):
                busy = {w.conn: w for w in pool if w.key is not None}
                for conn in wait(list(busy)):
                    worker = busy[conn]
                    key, job = worker.key, worker.job
                    worker.key = worker.job = None
                    ok, result = worker.collect()
                    if not ok:
                        deaths.setdefault(key, []).append(result)
                        if len(deaths[key]) <= RETRIES:
                            queue.appendleft((key, job))  # run once more, next
                            result = None
                        else:
                            result = Failed(f"{'; then '.join(deaths[key])}; not run again")
                    if queue:
                        worker.submit(*queue.popleft())
                    if result is not None:
                        yield key, result
        finally:
            for worker in pool:
                worker.close() if worker.key is None else worker.stop()

    def run(self, fn: Callable[[Any], Any], items: Iterable[Item], on_result: OnResult,
            warm: Optional[Callable[[], None]] = None) -> None:
        for key, result in self.results(fn, items, warm):
            on_result(key, result)

    def close(self) -> None:
        pass
