"""`reconcile sweep REGISTRY`: the reference (and optionally tools) over every model of a registry
(reconcile/sweep.py)."""
from __future__ import annotations

import time
from typing import Optional

import click

from ..options import memory_option, names_once, timeout_seconds
from .atlas import engine_options


@click.command("sweep")
@click.argument("registry")
@click.option("--tools", callback=names_once, help="Comma-separated tool ids to run on every model too (their "
                                                   "totals and residuals in the table).")
@click.option("--sizes", default="small", show_default=True,
              help="hf: small (the small-config rule, README 'Model specs') or default (the configuration "
                   "classes' own sizes). timm and torchvision models are always at their default size.")
@click.option("--models", "names", callback=names_once, help="Comma-separated model names of the registry: only "
                                                             "these.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output directory: sweep.csv, summary.md, timings.csv.")
@click.option("--timeout", type=float, default=300.0, show_default=True, callback=timeout_seconds,
              help="Seconds per model (finite, above 0, at most 86400).")
@click.option("--fresh", is_flag=True, help="Run every model again even if its rows are in the cache.")
@click.option("--quiet", is_flag=True, help="No progress lines.")
@engine_options
@memory_option
def command(registry: str, tools: Optional[str], sizes: str, names: Optional[str], out_dir: str, timeout: float,
            fresh: bool, quiet: bool, engine_name: str, address: Optional[str]) -> None:
    """Build, trace and check every model of REGISTRY (hf, timm, torchvision): built or why not, the params and
    MACC laws, the oracles (sum(p.numel()); FlopCounterMode / 2 with eager attention; torchvision's weights
    metadata), the gap and what explains it, per-tool totals with --tools. One job per model with the timeout;
    a rerun runs only the models not yet in the cache."""
    from .. import sweep as engine
    from .. import sweep_report
    from ..api import _split, prepare_out_dir
    from ..errors import UserError

    tool_ids = _split(tools) if tools is not None else []
    if tools is not None and not tool_ids:
        raise UserError("--tools is empty: name at least one tool, or leave the option out")
    if tool_ids:
        from .. import adapters

        for tool in tool_ids:
            adapters.get(tool)  # an unknown tool is a UserError with the close names
    engine.check_options(registry, sizes)
    from ..engines.sweep_executor import executor

    run_on = executor(engine_name, address)  # None: the sweep's own LocalExecutor
    out = prepare_out_dir(out_dir, ("sweep.csv", "summary.md", "timings.csv"))
    jobs = engine.enumerate_jobs(registry, sizes, tool_ids, timeout, _split(names) if names else None)
    started = time.monotonic()
    say = (lambda text: None) if quiet else (lambda text: click.echo(text, err=True))
    say(f"sweep {registry}: {len(jobs)} models, timeout {timeout:g} s each")
    counts = {"cached": 0}

    def progress(done: int, total: int, job, rows, seconds: float, cached: bool) -> None:
        counts["cached"] += cached
        status = rows[0]["status"] if rows else "no rows"
        verdict = rows[0].get("gap_verdict", "") if rows else ""
        took = "cached" if cached else f"{seconds:5.1f} s"
        elapsed = time.monotonic() - started
        say(f"[{done}/{total}] {job.name:<36} {status:<14} {verdict:<11} {took}  ({elapsed:.0f} s)")

    rows, seconds = engine.sweep(jobs, run_on, progress=progress, fresh=fresh)
    paths = sweep_report.write(out, registry, sizes, jobs, rows, seconds)
    traced = sum(1 for r in rows if r["tool"] == "" and r["status"] == engine.TRACED)
    say(f"done in {time.monotonic() - started:.1f} s ({counts['cached']} of {len(jobs)} from the cache): "
        f"{traced} of {len(jobs)} built and traced; {out / 'summary.md'}")
    click.echo(f"{traced}/{len(jobs)} traced; see {out / 'summary.md'}")
    del paths
