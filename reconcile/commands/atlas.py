"""`reconcile atlas`: the discrepancy atlas. `atlas sweep` runs every (model, tool, release) job into a store,
`atlas DIR` renders DIR's store into reports/atlas/, `atlas query "SQL"` queries a store with DuckDB, `atlas
export DIR` prints its records as CSV (the same bytes from any engine)."""
from __future__ import annotations

import sys
import time
from typing import Optional

import click

from ..options import memory_option, names_once, timeout_seconds

DEFAULT_STORE = "atlas-sweep"


class _Group(click.Group):
    """`reconcile atlas DIR` is `reconcile atlas render DIR`: a first argument that names no subcommand is a
    folder to render."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["render"] + list(args)
        return super().parse_args(ctx, args)


@click.group("atlas", cls=_Group)
def command() -> None:
    """The discrepancy atlas: what each counter counts on each architecture, release by release.

    \b
    reconcile atlas sweep [--models ...] [--tools ...] [--releases TOOL=V1,V2|TOOL=all|all] --out DIR
                          [--engine builtin|ray]
    reconcile atlas releases [--tools ...] [--from-registry --out FILE]   the releases `all` sweeps
    reconcile atlas DIR [--out reports/atlas]      render DIR's store: atlas.md, atlas.html, atlas.csv
    reconcile atlas query "SQL" [--store DIR]      views: records, jobs, raw
    reconcile atlas export DIR                     every record as CSV, ordered by job key"""


def engine_options(fn):
    fn = click.option("--address", default=None,
                      help="Ray cluster address (ray start --head prints it; default: $RAY_ADDRESS, else a local "
                           "cluster started for the sweep). Only with --engine ray.")(fn)
    fn = click.option("--engine", "engine_name", default="builtin", show_default=True,
                      help="Where jobs run: builtin (worker processes on this machine) or ray (the `.[cluster]` "
                           "extra).")(fn)
    return fn


def _releases(values: tuple[str, ...]) -> dict[str, list[str]]:
    """--releases: TOOL=V1,V2 (those, in that order), TOOL=all (every listed release, reconcile/releases.json),
    or all (every listed release of each atlas.EVERY_RELEASE_TOOLS)."""
    from .. import adapters, atlas
    from ..errors import UserError
    from ..validate import parse_versions

    out: dict[str, list[str]] = {}
    for value in values:
        if value.strip() == atlas.ALL_RELEASES:
            out.update({tool: atlas.every_release(tool) for tool in atlas.EVERY_RELEASE_TOOLS})
            continue
        tool, sep, versions = value.partition("=")
        if not sep:
            raise UserError(f"--releases {value!r}: expected TOOL=VERSION,VERSION (e.g. thop=0.0.31,0.1.1), "
                            "TOOL=all or all")
        adapters.get(tool.strip())
        out[tool.strip()] = atlas.every_release(tool.strip()) if versions.strip() == atlas.ALL_RELEASES \
            else parse_versions(versions, "--releases")
    return out


@command.command("sweep")
@click.option("--models", callback=names_once,
              help="Comma-separated model specs (default: the atlas's models, reconcile/atlas.py MODELS).")
@click.option("--tools", callback=names_once, help="Comma-separated tool ids (default: the atlas's counters).")
@click.option("--releases", "release_values", multiple=True,
              help="TOOL=V1,V2,...: the releases of TOOL to sweep, upgrade order (repeatable; default: "
                   "reconcile/atlas.py RELEASES; a tool not named runs at the venv's version). TOOL=all: every "
                   "release the registry lists (reconcile/releases.json, in the order released); all: that for "
                   "thop, torchinfo, ptflops, fvcore, calflops, torchstat and torchsummary.")
@click.option("--architectures", is_flag=True,
              help="Every transformers model type the hf sweep built and traced (reports/sweep/hf/sweep.csv, as "
                   "it names them; with --models, those too): the atlas's breadth, swept with --venv-only.")
@click.option("--venv-only", is_flag=True, help="Every tool at the venv's version only (no release installs).")
@click.option("--out", "out_dir", default=DEFAULT_STORE, show_default=True, type=click.Path(file_okay=False),
              help="The store's folder (OUT/store/*.parquet); a rerun adds only the jobs it lacks.")
@engine_options
@click.option("--workers", type=click.IntRange(1, 256), default=None,
              help="Worker processes of the builtin engine, or CPUs of a local Ray cluster (default: the cores).")
@click.option("--timeout", type=float, default=120.0, show_default=True, callback=timeout_seconds,
              help="Seconds per job (finite, above 0, at most 86400).")
@click.option("--batch-jobs", type=click.IntRange(1, 100000), default=None,
              help="Jobs per store file (default 16, or what finished in 10 s).")
@click.option("--quiet", is_flag=True, help="No progress lines.")
@memory_option
def sweep_command(models: Optional[str], tools: Optional[str], release_values: tuple[str, ...], architectures: bool,
                  venv_only: bool,
                  out_dir: str, engine_name: str, address: Optional[str], workers: Optional[int], timeout: float,
                  batch_jobs: Optional[int], quiet: bool) -> None:
    """Run every (model, tool, release) job the store in OUT lacks, on the engine, one row per number."""
    from pathlib import Path

    from .. import atlas, engines
    from ..api import split_specs
    from ..jobs import memory_cap

    names = split_specs(models) if models else None
    if architectures:
        names = list(dict.fromkeys((names or []) + atlas.sweep_architectures()))
    if names and len(names) > 20 and not quiet:  # one job resolves them: ~0.5 s per transformers spec
        click.echo(f"resolving {len(names)} model specs", err=True)
    specs = atlas.resolve_models(names)
    tool_names = atlas.tool_list(split_specs(tools) if tools else None)
    releases = {} if venv_only else {**{t: list(v) for t, v in atlas.RELEASES.items()},
                                     **_releases(release_values)}
    out = Path(out_dir)
    atlas.check_out(out)
    engine = engines.make(engine_name, address, workers)
    try:
        def installed(tool, inst) -> None:
            if not quiet:
                click.echo(f"{tool} {inst.version}: {inst.how}" + (f" ({inst.error})" if inst.error else ""),
                           err=True)

        plan = atlas.plan(specs, tool_names, releases, timeout, memory_cap(), on_install=installed)
        if not quiet:
            click.echo(f"{len(plan.jobs) + len(plan.failed)} jobs ({len(specs)} models); {engine.describe()}",
                       err=True)
        started = time.monotonic()

        def progress(done, total, job, result) -> None:
            if not quiet:
                tail = getattr(result, "reason", "") or f"{result.wall_s:.1f} s on {result.host}"
                click.echo(f"[{done}/{total}] {job.describe()}: {tail}", err=True)

        summary = atlas.sweep(plan.jobs, out, engine, plan.failed, progress, batch_jobs)
    finally:
        engine.close()
    click.echo(f"{summary.ran} jobs run, {summary.skipped} already in the store, {summary.failed} failed for good, "
               f"{summary.dropped} written by another driver first; {time.monotonic() - started:.1f} s; "
               f"{out / 'store'}")


@command.command("render")
@click.argument("store_dir", type=click.Path(file_okay=False))
@click.option("--out", "out_dir", default="reports/atlas", show_default=True, type=click.Path(file_okay=False))
def render_command(store_dir: str, out_dir: str) -> None:
    """Render the atlas of STORE_DIR's store: atlas.md (< 150 KB), atlas.html (sortable, filterable), atlas.csv."""
    from .. import atlas_report

    paths = atlas_report.render(store_dir, out_dir)
    click.echo(", ".join(str(p) for p in paths.values()))


@command.command("query")
@click.argument("sql")
@click.option("--store", "store_dir", default=DEFAULT_STORE, show_default=True, type=click.Path(file_okay=False),
              help="The sweep's --out folder.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv"]), default="table", show_default=True)
def query_command(sql: str, store_dir: str, fmt: str) -> None:
    """Run SQL over the store (DuckDB). Views: records (one row per number: job_key, release, model, tool,
    tool_version, layer, layer_kind, quantity, metric, value, value_text, status, message, ...), jobs (one row per
    job: status, message, rows, engine, host, cpu_s, wall_s), raw (every file's rows, with filename)."""
    from .. import atlas

    frame = atlas.query(store_dir, sql)
    if fmt == "csv":
        sys.stdout.write(frame.to_csv(index=False, lineterminator="\n"))
    else:
        click.echo(frame.to_string(index=False) if len(frame) else "(no rows)")


@command.command("export")
@click.argument("store_dir", type=click.Path(file_okay=False))
def export_command(store_dir: str) -> None:
    """Print every record of STORE_DIR's store as CSV, ordered by job key (byte-identical across engines)."""
    from .. import atlas

    sys.stdout.write(atlas.export(store_dir))


@command.command("releases")
@click.option("--tools", callback=names_once,
              help="Comma-separated tool ids (default: those `--releases all` sweeps).")
@click.option("--from-registry", is_flag=True,
              help="Read the package registry now (one request per distribution) instead of the committed list.")
@click.option("--out", "out_file", default=None, type=click.Path(dir_okay=False),
              help="With --from-registry: write the list there (reconcile/releases.json is the committed one).")
def releases_command(tools: Optional[str], from_registry: bool, out_file: Optional[str]) -> None:
    """The releases `reconcile atlas sweep --releases all` sweeps, per tool, in the order released, each with
    its upload date and why pip cannot install it when the listing says (only eggs)."""
    from datetime import datetime, timezone
    from pathlib import Path

    from .. import atlas, releases
    from ..api import split_specs
    from ..errors import UserError

    names = split_specs(tools) if tools else list(atlas.EVERY_RELEASE_TOOLS)
    dists = {name: atlas.distribution(name) for name in names}
    for name, dist in dists.items():
        if not dist:
            raise UserError(f"--tools {name}: it names no distribution to list releases of")
    if out_file and not from_registry:
        raise UserError("--out goes with --from-registry (the committed list is reconcile/releases.json)")
    if from_registry:
        listing = releases.Listing(datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                                   releases.read_registry(dict.fromkeys(dists.values())))
        if out_file:
            text = releases.dump(listing.read_utc, listing.by_dist)
            target = Path(out_file)
            partial = target.with_name(f".{target.name}.partial")
            partial.write_text(text)
            partial.replace(target)
    else:
        listing = releases.load()
    click.echo(f"read from the registry {listing.read_utc}")
    for name, dist in dists.items():
        rows = listing.releases(dist)
        click.echo(f"{name} ({dist}): {len(rows)} releases")
        for r in rows:
            problem = r.install_problem()
            click.echo(f"  {r.version}  {r.uploaded[:10]}" + ("  yanked" if r.yanked else "")
                       + (f"  ({problem})" if problem else ""))
