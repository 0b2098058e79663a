"""`reconcile` command line. Thin wrappers over the Python API; any bad input is one line and exit status 2."""
from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path
from typing import Optional

import click

from .errors import UserError

FORMATS = click.Choice(["table", "csv", "json"])


def _model_options(fn):
    fn = click.option("--input-shape", help="N,C,H,W for --model-file (or to override a reference model's).")(fn)
    fn = click.option("--model-file", help="PATH.py:FACTORY, FACTORY returns a torch nn.Module.")(fn)
    return fn


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Which FLOPs is that number? Run the counters on the same models and explain every mismatch."""


def _fmt(value: Optional[int]) -> str:
    return "" if value is None else f"{value:,}"


@cli.command()
@click.argument("model", required=False)
@_model_options
@click.option("--framework", type=click.Choice(["torch", "keras", "caffe"]), default=None,
              help="Which form of the model to read (default: torch, or caffe for a .prototxt).")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
def formulas(model: Optional[str], model_file: Optional[str], input_shape: Optional[str], framework: Optional[str],
             fmt: str) -> None:
    """Per-layer params, MACC and FLOPs by the reference document's formulas."""
    from conventions.formulas import TOTAL, model_counts

    from . import models
    from .cache import layer_ir

    spec = models.resolve(model, model_file, input_shape)
    framework = framework or ("torch" if spec.torch_factory else "caffe")
    ir = layer_ir(spec, framework)  # models.layer_ir, kept in the result cache
    rows = [{"layer": layer.name if layer else TOTAL, "kind": layer.kind if layer else "",
             "params": counts.params, "macc": counts.macc, "flops": counts.flops, "note": counts.note}
            for layer, counts in model_counts(ir)]
    if fmt == "json":
        click.echo(json.dumps({"model": spec.name, "framework": framework, "input_shape": list(ir.input_shape),
                               "notes": list(ir.notes), "layers": rows}, indent=2))
        return
    if fmt == "csv":
        out = io.StringIO()
        out.write("layer,kind,params,macc,flops\n")
        for row in rows:
            out.write(",".join(str(row[c]) if row[c] is not None else ""
                               for c in ("layer", "kind", "params", "macc", "flops")) + "\n")
        click.echo(out.getvalue(), nl=False)
        return
    header = ("layer", "kind", "params", "macc", "flops")
    cells = [[r["layer"], r["kind"], _fmt(r["params"]), _fmt(r["macc"]), _fmt(r["flops"]) or "-"] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    line = lambda c: "  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(c, widths)))
    click.echo(f"{spec.name} ({framework}, input {'x'.join(map(str, ir.input_shape))}), document formulas")
    click.echo(line(header))
    for c in cells:
        click.echo(line(c))
    notes = [f"{r['layer']}: {r['note']}" for r in rows if r["note"]] + list(ir.notes)
    for note in notes:
        click.echo(f"note: {note}")


def progress_line(done: int, total: int, job, records, seconds: float, cached: bool = False) -> None:
    """One stderr line per finished job (`run`, `check`): its statuses and seconds, or "cached"."""
    statuses = sorted({r.status for r in records})
    took = "cached" if cached else f"{seconds:5.1f} s"
    click.echo(f"[{done}/{total}] {job.describe():<32} {'/'.join(statuses) or 'no rows':<12} {took}", err=True)


@cli.command()
@click.option("--models", help="Comma-separated reference model names or .prototxt paths (default: all).")
@click.option("--tools", help="Comma-separated tool ids (default: all).")
@_model_options
@click.option("--batch", type=int, default=None, help="Batch size for reference models (default: their own).")
@click.option("--out", "out_dir", default="reports", show_default=True, type=click.Path(file_okay=False))
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds per (tool, model) job.")
@click.option("--quiet", is_flag=True, help="No progress lines.")
@click.option("--fresh", is_flag=True, help="Run every job even if its records are in the result cache "
                                            "(.cache/results, or $RECONCILE_CACHE_DIR), and overwrite them.")
def run(models: Optional[str], tools: Optional[str], model_file: Optional[str], input_shape: Optional[str],
        batch: Optional[int], out_dir: str, timeout: float, quiet: bool, fresh: bool) -> None:
    """Run the counters and write records.csv, explanations.csv, report.md and report.html into OUT."""
    from . import api
    from . import models as model_specs

    specs = [model_specs.from_model_file(model_file, input_shape)] if model_file else []
    if batch is not None and batch <= 0:
        raise UserError(f"--batch must be positive, not {batch}")
    jobs = api.plan(models, tools, specs, batch)
    started = time.monotonic()
    if not quiet:
        click.echo(f"running {len(jobs)} jobs ({len({j.tool for j in jobs})} tools x "
                   f"{len({j.spec.name for j in jobs})} models), timeout {timeout:g} s each", err=True)
    hits = []  # the jobs whose records came from the result cache

    def progress(done: int, total: int, job, records, seconds: float, cached: bool = False) -> None:
        if cached:
            hits.append(job)
        if not quiet:
            progress_line(done, total, job, records, seconds, cached)

    records = api.run_cached(jobs, timeout, progress, fresh)
    df = api.frame(records)
    from .report import write_outputs

    paths = write_outputs(df, Path(out_dir), {job.spec.name: job.spec for job in jobs})
    if not quiet:
        reused = f" ({len(hits)} of {len(jobs)} jobs from the result cache; --fresh runs them)" if hits else ""
        click.echo(f"done in {time.monotonic() - started:.1f} s{reused}; report: {paths['report.md']} "
                   f"(and {paths['report.html'].name}, records.csv, explanations.csv)", err=True)


def _register_commands() -> None:
    import importlib
    import pkgutil

    from . import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        cli.add_command(importlib.import_module(f"{commands.__name__}.{info.name}").command)


_register_commands()


def main(argv: Optional[list[str]] = None) -> None:
    try:
        cli.main(args=argv, prog_name="reconcile", standalone_mode=False)
    except UserError as exc:
        click.echo(f"reconcile: error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.UsageError as exc:
        click.echo(f"reconcile: error: {exc.format_message()}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("reconcile: aborted", err=True)
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(0)
