"""`reconcile matrix`: one tool, several of its releases, the same models: what changed, in convention terms."""
from __future__ import annotations

import time
from typing import Optional

import click

from ..options import memory_option, names_once, timeout_seconds


def _installed(inst) -> None:
    if inst.how == "failed":
        click.echo(f"{inst.version}: {inst.error}", err=True)
    else:
        click.echo(f"{inst.version}: {'reused cached install' if inst.how == 'reused' else 'installed'} "
                   f"{inst.folder}", err=True)


@click.command("matrix")
@click.option("--tool", required=True, help="Tool id, e.g. thop.")
@click.option("--versions", required=True,
              help="Comma-separated releases in upgrade order, e.g. 0.0.31.post2005241907,0.1.1.post2209072238.")
@click.option("--models", callback=names_once, help="Comma-separated reference model names (default: all).")
@click.option("--out", "out_dir", default="reports/drift", show_default=True, type=click.Path(file_okay=False))
@click.option("--cache-dir", default=None,
              help="Where releases are installed, one folder each (default: $RECONCILE_TOOL_CACHE, else tools/ "
                   "in the cache folder, ~/.cache/reconcile/tools).")
@click.option("--timeout", type=float, default=120.0, show_default=True, callback=timeout_seconds,
              help="Seconds per (version, model) job (finite, above 0, at most 86400).")
@click.option("--quiet", is_flag=True, help="No progress lines.")
@memory_option
def command(tool: str, versions: str, models: Optional[str], out_dir: str, cache_dir: Optional[str],
            timeout: float, quiet: bool) -> None:
    """Run one tool's releases side by side and explain each change of a number by a change of convention.

    Writes OUT/drift.csv, OUT/records.csv and OUT/report_drift.md (+ .html). A release pip cannot install
    becomes an error row; the others still run (exit 0)."""
    from .. import api, drift
    from ..progress import printer

    drift.tool_distribution(tool)  # a UserError (exit 2) before anything installs
    wanted = drift.parse_versions(versions)
    specs = [job.spec for job in api.plan(models, tool)]
    out = api.prepare_out_dir(out_dir, ["records.csv", "drift.csv", "report_drift.md", "report_drift.html"])
    started = time.monotonic()
    records, installs = drift.run_matrix(tool, wanted, specs, drift.cache_root(cache_dir), timeout,
                                         printer(quiet, versions=True), None if quiet else _installed)
    table = drift.drift_rows(records, wanted, drift.irs_for(specs, timeout))
    paths = drift.write_outputs(out, tool, wanted, installs, records, table)
    for row in table[table["layer"] == "__total__"].itertuples(index=False):
        click.echo(f"{row.model} {row.metric}: {row.from_version} -> {row.to_version}: {drift.n(row.from_value)} -> "
                   f"{drift.n(row.to_value)}: {row.change}")
    for row in table[table["layer"] == "__model__"].itertuples(index=False):
        click.echo(f"{row.model}: {row.explanation}")
    if not quiet:
        click.echo(f"done in {time.monotonic() - started:.1f} s; {paths['drift.csv']}, {paths['report_drift.md']}",
                   err=True)
