"""Engines: where a sweep's jobs run. One interface, two implementations:
  - `builtin` (the default): a pool of warm worker processes on this machine, built on reconcile.jobs (the same
    process hygiene as reconcile.runner's workers);
  - `ray` (the `.[cluster]` extra): each job is a Ray task, on a local cluster started for the sweep or on the
    cluster at --address / $RAY_ADDRESS.

What an engine runs is a top-level function `fn(item) -> result` over picklable items with stable string keys. The
function does its own isolation (reconcile.engines.tooljob forks a fresh process per job, with its timeout, memory
cap and process group), so a job runs the same code, and gives the same records, on every engine. The engine only
decides where `fn` runs and what happens when the process running it dies: the job is run once more; if that dies
too, the result is a `Failed` with the reason, which the caller turns into an error row. Results are handed to
`on_result` in the driver (this process), as they arrive, so the store writes each job once, from one place.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Optional, Protocol

from ..errors import UserError

BUILTIN, RAY = "builtin", "ray"
ENGINES = (BUILTIN, RAY)
ADDRESS_ENV = "RAY_ADDRESS"
RETRIES = 1  # a job whose worker process died is run once more, then it is an error row


@dataclass(frozen=True)
class Failed:
    """A job that produced no result: the process running it died (twice), or its node was lost for good."""
    reason: str


Item = tuple[str, Any]  # (stable key, picklable job)
OnResult = Callable[[str, Any], None]


class Engine(Protocol):
    name: str
    workers: int

    def results(self, fn: Callable[[Any], Any], items: Iterable[Item],
                warm: Optional[Callable[[], None]] = None) -> Iterator[tuple[str, Any]]:
        """(key, result) for every (key, job) as each finishes, any order: fn's return value or a Failed. fn
        runs in a worker process; `warm` runs once in each worker before its first job (imports paid once per
        worker, not once per job). Closing the iterator early stops the workers and the pending jobs."""

    def run(self, fn: Callable[[Any], Any], items: Iterable[Item], on_result: OnResult,
            warm: Optional[Callable[[], None]] = None) -> None:
        """on_result(key, result) here, in the driver, for each of `results`."""

    def describe(self) -> str:
        """One line for the progress output: the engine, its workers, where."""

    def close(self) -> None:
        """Release the workers (and a local cluster this engine started)."""


def make(name: str = BUILTIN, address: Optional[str] = None, workers: Optional[int] = None) -> Engine:
    """The engine called `name`; --address (else $RAY_ADDRESS) only with ray. A UserError for an unknown name or
    a missing extra, before any job runs."""
    if name == BUILTIN:
        if address:
            raise UserError("--address needs --engine ray (the builtin engine runs on this machine)")
        from .builtin import BuiltinEngine

        return BuiltinEngine(workers)
    if name == RAY:
        from .ray_engine import RayEngine

        return RayEngine(address or os.environ.get(ADDRESS_ENV) or None, workers)
    from ..names import did_you_mean

    raise UserError(f"unknown engine {name!r}{did_you_mean(name, ENGINES)}; engines: {', '.join(ENGINES)}")
