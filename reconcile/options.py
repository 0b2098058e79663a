"""Click option callbacks shared by the commands: every parameter is validated at the edge, as one line."""
from __future__ import annotations

import math
from typing import Optional

import click

from .errors import UserError


def timeout_seconds(ctx: click.Context, param: click.Parameter, value: Optional[float]) -> Optional[float]:
    """--timeout: finite, above 0, at most 24 h (runner.MAX_TIMEOUT_S)."""
    if value is None:
        return None
    from .runner import check_timeout

    try:
        return check_timeout(value, f"--{param.name}")
    except UserError as exc:
        raise click.BadParameter(str(exc)) from None


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
