"""`reconcile check`: compare every number the installed tools print with the golden snapshots."""
from __future__ import annotations

import sys
from typing import Optional

import click

from ..helptext import model_spec_help
from ..options import memory_option, names_once, timeout_seconds


@click.command("check", epilog=model_spec_help())
@click.option("--update", is_flag=True, help="Rewrite the goldens with the current numbers (on purpose).")
@click.option("--tools", callback=names_once, help="Comma-separated tool ids (default: every installed tool).")
@click.option("--models", callback=names_once,
              help="Comma-separated model specs (see below; default: the reference suite).")
@click.option("--golden-dir", default=None,
              help="Folder of <tool>-<version>.csv goldens (default: $RECONCILE_GOLDEN_DIR or tests/golden).")
@click.option("--timeout", type=float, default=120.0, show_default=True, callback=timeout_seconds,
              help="Seconds per (tool, model) job (finite, above 0, at most 86400).")
@click.option("--quiet", is_flag=True, help="No progress lines.")
@click.option("--fresh", is_flag=True, help="Run every job even if its records are in the result cache.")
@memory_option
def command(update: bool, tools: Optional[str], models: Optional[str], golden_dir: Optional[str], timeout: float,
            quiet: bool, fresh: bool) -> None:
    """Run the pinned tools on the reference models and compare with tests/golden/<tool>-<version>.csv.

    Exit 1 when a number differs or a tool version has no golden, each difference explained by the change of
    convention it reflects; --update rewrites the goldens."""
    from .. import golden
    from ..api import _split
    from ..errors import UserError

    if tools is not None and not _split(tools):
        raise UserError("--tools is empty: name at least one tool, or leave the option out for every installed one")
    from ..progress import printer

    report = golden.check(_split(tools), models, golden_dir, update, timeout, printer(quiet), fresh=fresh)
    click.echo(report.text())
    if report.failed:
        sys.exit(1)
