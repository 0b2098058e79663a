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


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("reconcile")
    except PackageNotFoundError:
        return "unknown"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), "--version", prog_name="reconcile", message="%(prog)s %(version)s")
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

    spec = models.resolve(model, model_file, input_shape)
    framework = framework or ("torch" if spec.torch_factory else "caffe")
    ir = models.layer_ir(spec, framework)
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


@cli.command()
@click.option("--models", help="Comma-separated reference model names or .prototxt paths (default: all).")
@click.option("--tools", help="Comma-separated tool ids (default: all).")
@_model_options
@click.option("--batch", type=int, default=None, help="Batch size for reference models (default: their own).")
@click.option("--out", "out_dir", default="reports", show_default=True, type=click.Path(file_okay=False))
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds per (tool, model) job.")
@click.option("--quiet", is_flag=True, help="No progress lines.")
def run(models: Optional[str], tools: Optional[str], model_file: Optional[str], input_shape: Optional[str],
        batch: Optional[int], out_dir: str, timeout: float, quiet: bool) -> None:
    """Run the counters and write records.csv, explanations.csv, report.md (+ models/*.md) and report.html
    into OUT."""
    from . import api
    from .progress import printer
    from .report import write_outputs

    progress = printer(quiet)
    started = time.monotonic()
    records = api.run(models, tools, batch=batch, timeout=timeout, progress=progress, model_file=model_file,
                      input_shape=input_shape)
    paths = write_outputs(records, Path(out_dir), records.attrs["specs"], progress)
    progress.note(f"done in {time.monotonic() - started:.1f} s; report: {paths['report.md']} "
                  f"(and {paths['report.html'].name}, records.csv, explanations.csv)")


def _echo_frame(frame, fmt: str) -> None:
    if fmt == "csv":
        click.echo(frame.to_csv(index=False, lineterminator="\n"), nl=False)
    elif fmt == "json":
        click.echo(frame.to_json(orient="records", indent=2))
    else:
        cells = [[str(v) for v in row] for row in frame.itertuples(index=False)]
        header = [str(c) for c in frame.columns]
        widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(header)]
        for row in [header] + cells:
            click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


@cli.command()
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
def tools(fmt: str) -> None:
    """The counting tools: id, installed version, pinned version (constraints.txt), what each one reads."""
    from . import api

    _echo_frame(api.list_tools(), fmt)


@cli.command("models")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
def models_(fmt: str) -> None:
    """The reference models (and presets): input shape, forms, whether in the default suite, what each pins
    down."""
    from . import api

    _echo_frame(api.list_models(), fmt)


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
