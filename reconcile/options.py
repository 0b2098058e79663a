"""Click option callbacks shared by the commands: every parameter is validated at the edge, as one line."""
from __future__ import annotations

import math
from typing import Optional

import click

from .errors import UserError


def timeout_seconds(ctx: click.Context, param: click.Parameter, value: Optional[float]) -> Optional[float]:
    """--timeout: finite, above 0, at most 24 h (validate.MAX_TIMEOUT_S). It also bounds the jobs the command
    starts to check its specs (jobs.limits), for as long as the command runs."""
    if value is None:
        return None
    from .jobs import limits
    from .validate import check_timeout

    try:
        seconds = check_timeout(value, f"--{param.name}")
    except UserError as exc:
        raise click.BadParameter(str(exc)) from None
    ctx.with_resource(limits(timeout=seconds))
    return seconds


def _memory_cap(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> None:
    if value is None:
        return
    from .jobs import limits
    from .validate import parse_memory

    try:
        ctx.with_resource(limits(memory=parse_memory(value, "--memory")))
    except UserError as exc:
        raise click.BadParameter(str(exc)) from None


def memory_option(fn):
    """--memory: the memory cap of every job process the command starts (jobs.memory_cap)."""
    return click.option("--memory", callback=_memory_cap, expose_value=False, is_eager=True,
                        help="Memory each job process may use beyond what it holds at its start (torch and the "
                             "tools, ~1 GB): 4G, 1536M, 50% of this machine (default: $RECONCILE_MEMORY, else half "
                             "of the machine's RAM, at least 2G). A job above it is an error row.")(fn)


def tolerance_fraction(ctx: click.Context, param: click.Parameter, value: Optional[float]) -> Optional[float]:
    if value is not None and (not math.isfinite(value) or value < 0):
        raise click.BadParameter(f"--{param.name} must be a finite fraction of 0 or more, not {value}")
    return value


def names_once(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[str]:
    """A comma-separated list: names given twice run once, with a note on stderr."""
    if value is None:
        return None
    from .api import duplicates

    for name in duplicates(value):
        click.echo(f"note: --{param.name} lists {name!r} more than once; it runs once", err=True)
    return value
