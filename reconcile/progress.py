"""The one progress printer: a line per finished job, and a line per step after the jobs ("explaining ...",
"writing report ...") with its time, all on stderr so stdout stays the command's answer."""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Iterator, Optional, TextIO


class Printer:
    """Call it as the runner's progress callback; use `step` for the work after the last job."""

    def __init__(self, stream: Optional[TextIO] = None, versions: bool = False):
        self.stream = stream
        self.versions = versions  # name the tool version on each line (the release matrix runs one tool's)

    def _echo(self, text: str) -> None:
        stream = self.stream or sys.stderr
        stream.write(text + "\n")
        stream.flush()

    def __call__(self, done: int, total: int, job, records, seconds: float, cached: bool = False) -> None:
        statuses = sorted({r.status for r in records})
        what = job.describe()
        if self.versions:
            version = records[0].tool_version if records else "?"
            what = f"{job.tool} {version} on {job.spec.name}"
        took = "cached" if cached else f"{seconds:5.1f} s"  # records reused from the result cache
        self._echo(f"[{done}/{total}] {what:<32} {'/'.join(statuses) or 'no rows':<12} {took}")

    def note(self, text: str) -> None:
        self._echo(text)

    @contextmanager
    def step(self, label: str) -> Iterator[None]:
        self._echo(f"{label} ...")
        started = time.monotonic()
        yield
        self._echo(f"{label}: {time.monotonic() - started:.1f} s")


class Quiet(Printer):
    def _echo(self, text: str) -> None:
        pass


def printer(quiet: bool = False, versions: bool = False) -> Printer:
    return Quiet() if quiet else Printer(versions=versions)
