"""`reconcile` command line. Thin wrappers over the Python API; any bad input is one line and exit status 2."""
from __future__ import annotations

import csv
import errno
import io
import json
import os
import sys
import time
from typing import Optional

import click

from .errors import UserError
from .helptext import model_spec_help
from .options import memory_option, names_once, timeout_seconds

FORMATS = click.Choice(["table", "csv", "json"])


def _model_options(fn):
    fn = click.option("--input-shape", help="N,C,H,W: required with --model-file (batch first, at least 2 "
                                            "dimensions); for reference models it replaces their shape and must "
                                            "have their number of dimensions; B,T for a token model; refused "
                                            "for a .prototxt.")(fn)
    fn = click.option("--model-file", help="PATH.py:FACTORY, FACTORY returns a torch nn.Module. The file is "
                                           "checked without running it; its code runs only in job processes.")(fn)
    return fn


def _timeout_option(what: str):
    return click.option("--timeout", type=float, default=120.0, show_default=True, callback=timeout_seconds,
                        help=f"Seconds per {what} (finite, above 0, at most 86400).")


MODEL_SPEC_HELP = model_spec_help()


def _token_options(fn):
    fn = click.option("--seq-len", type=int, default=None,
                      help="Sequence length of a token model (default: its maximum positions, at most 1024).")(fn)
    fn = click.option("--batch", type=int, default=None, help="Batch size (default: the model's own, 1 for "
                                                               "token models).")(fn)
    return fn


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("reconcile")
    except PackageNotFoundError:
        return "unknown"


class StdoutClosed(Exception):
    """The reader of stdout left (`reconcile models | head -0`): nothing more to say, not a failure."""


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except OSError as exc:  # click would turn EPIPE into exit 1
            if exc.errno == errno.EPIPE:
                raise StdoutClosed() from None
            raise


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), "--version", prog_name="reconcile", message="%(prog)s %(version)s")
def cli() -> None:
    """Which FLOPs is that number? Run the counters on the same models and explain every mismatch."""


def warn_conservation(ir) -> None:
    """The reference itself is incomplete on this model (a conservation gap): say so on stderr."""
    for note in ir.notes:
        if note.startswith("conservation gap"):
            click.echo(f"reconcile: warning: {ir.name}: {note}", err=True)


def _fmt(value: Optional[int]) -> str:
    return "" if value is None else f"{value:,}"


@cli.command(epilog=MODEL_SPEC_HELP)
@click.argument("model", required=False)
@_model_options
@click.option("--framework", type=click.Choice(["torch", "keras", "caffe"]), default=None,
              help="Which form of the model to read (default: torch, or caffe for a .prototxt).")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@_token_options
@click.option("--tokens", default=None, help="Training tokens D (e.g. 300e9): token models' training-compute "
                                             "conventions are also given as totals over D tokens.")
@click.option("--layers", is_flag=True, help="Token models: also print the per-layer table (other models always "
                                             "print it; --format csv/json always carry it).")
@_timeout_option("trace of the model (it runs in its own process)")
@click.option("--training", is_flag=True, help="Measure one training step instead: forward, input-gradient and "
                                               "weight-gradient products per layer (loss: the sum of the outputs), "
                                               "the backward/forward ratio, and every training convention's "
                                               "distance from it (reconcile/training.py).")
@click.option("--frozen", multiple=True, help="With --training: freeze the parameters whose names match (a glob "
                                              "such as 'transformer.h.0.*', or re:REGEX); repeatable.")
@click.option("--recompute", type=click.Choice(["none", "full", "selective"]), default="none", show_default=True,
              help="With --training: activation recomputation, accounted from the measured forward (full: every "
                   "block's forward again; selective: the attention core, Korthikanti et al. 2022 §4).")
@click.option("--counters", default=None, help="With --training: training-FLOPs counters to run too, comma-"
                                               "separated (torch_flop_counter, calflops, deepspeed, ptflops).")
@memory_option
def formulas(model: Optional[str], model_file: Optional[str], input_shape: Optional[str], framework: Optional[str],
             fmt: str, batch: Optional[int], seq_len: Optional[int], tokens: Optional[str], layers: bool,
             timeout: float, training: bool = False, frozen: tuple = (), recompute: str = "none",
             counters: Optional[str] = None) -> None:
    """Per-layer params, MACC and FLOPs by the reference document's formulas. For a token model (hf:, preset:)
    the whole model's totals and every LLM convention (conventions/llm.py) with its basis terms and citation;
    the per-layer table with --layers. --training: one measured training step instead."""
    from conventions.formulas import TOTAL, model_counts

    from . import models
    from .runner import trace_ir

    n_tokens = _parse_tokens(tokens)
    spec = models.resolve(model, model_file, input_shape, batch=batch, seq_len=seq_len)
    if training or frozen or recompute != "none" or counters is not None:
        from .training_report import formulas_training

        formulas_training(spec, fmt, timeout, training, frozen, recompute, counters, n_tokens)
        return
    framework = framework or ("torch" if spec.torch_factory else "caffe")
    if framework not in spec.frameworks:
        form = {"torch": "PyTorch definition", "keras": "Keras twin", "caffe": "Caffe prototxt"}[framework]
        raise UserError(f"model {spec.name!r} has no {form}")
    shapes = models.llm_shapes(spec)
    traced = trace_ir(spec, framework, timeout)  # the model's code runs in a child; what it prints goes nowhere
    if traced.model is None:
        if shapes is None:
            raise UserError(traced.error)
        _llm_only(spec, shapes, n_tokens, fmt, f"no per-layer table: {traced.error}")
        return
    ir = traced.model
    warn_conservation(ir)
    rows = [{"layer": layer.name if layer else TOTAL, "kind": layer.kind if layer else "",
             "params": counts.params, "macc": counts.macc, "flops": counts.flops, "note": counts.note}
            for layer, counts in model_counts(ir)]
    if fmt == "json":
        data = {"model": spec.name, "framework": framework, "input_shape": list(ir.input_shape),
                "notes": list(ir.notes), "layers": rows}
        if shapes is not None:
            from .llm_report import convention_json

            data["conventions"] = convention_json(shapes, n_tokens)
        click.echo(json.dumps(data, indent=2))
        return
    if fmt == "csv":
        columns = ("layer", "kind", "params", "macc", "flops")
        _echo_csv(columns, [[row[c] for c in columns] for row in rows])
        return
    notes = [(r["layer"], r["note"]) for r in rows if r["note"]]
    meta = ", meta device" if spec.meta else ""
    title = f"{spec.name} ({framework}, input {'x'.join(map(str, ir.input_shape))}{meta})"
    if shapes is not None:  # a token model: the whole model and the LLM conventions first, its layers on request
        from .llm_report import convention_table

        total = rows[-1]
        click.echo(title)
        click.echo(f"  document formulas over its {len(rows) - 1:,} layers: params {_fmt(total['params'])}, "
                   f"MACC {_fmt(total['macc'])}, FLOPs {_fmt(total['flops']) or '-'}")
        click.echo(convention_table(shapes, n_tokens))
        click.echo("")
        if not layers:
            _echo_notes(notes, list(ir.notes))
            click.echo(f"per-layer table ({len(rows) - 1:,} layers): --layers")
            return
    header = ("layer", "kind", "params", "macc", "flops")
    cells = [[r["layer"], r["kind"], _fmt(r["params"]), _fmt(r["macc"]), _fmt(r["flops"]) or "-"] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    line = lambda c: "  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(c, widths)))
    click.echo(f"{title}, document formulas")
    click.echo(line(header))
    for c in cells:
        click.echo(line(c))
    _echo_notes(notes, list(ir.notes))


def _echo_notes(layer_notes: list[tuple[str, str]], model_notes: list[str]) -> None:
    """One line per distinct note: a note shared by many layers ("no document formula for add") is said once
    with how many layers and the first few of them."""
    from .render import once, wrap

    for layers, note, count in once(layer_notes, "layers", named=False):
        click.echo("\n".join(wrap(f"note: {note}: {layers}" if count > 1 else f"note: {layers}: {note}")))
    for note in model_notes:
        click.echo("\n".join(wrap(f"note: {note}")))


def _parse_tokens(text: Optional[str]) -> Optional[float]:
    from .validate import parse_tokens

    return parse_tokens(text, "--tokens")


def _echo_csv(header, rows) -> None:
    """CSV through the csv module: a layer or model name with a comma, a quote or a newline stays one field."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    click.echo(out.getvalue(), nl=False)


def _llm_only(spec, shapes, tokens: Optional[float], fmt: str, why: str) -> None:
    """formulas for a token model whose per-layer table cannot be built: the conventions alone."""
    from .llm_report import convention_json, convention_table

    if fmt == "json":
        click.echo(json.dumps({"model": spec.name, "framework": "torch", "input_shape": list(spec.input_shape),
                               "notes": [why], "layers": [], "conventions": convention_json(shapes, tokens)},
                              indent=2))
        return
    if fmt == "csv":
        _echo_csv(("convention", "quantity", "value", "basis", "residual"),
                  [[r["convention"], r["quantity"], r["value"], r["basis"], f"{r['residual']:g}"]
                   for r in convention_json(shapes, tokens)])
        return
    click.echo(f"{spec.name} (torch, input {'x'.join(map(str, spec.input_shape))}"
               f"{', meta device' if spec.meta else ''}), {spec.config.get('n_params', 0):,} parameters")
    _echo_notes([], [why] + ([spec.note] if spec.note else []))
    click.echo(convention_table(shapes, tokens))


EXIT_STATUSES = """Exit status: 0 when every job ran (a tool that crashed, timed out or is missing is a row of
the report, not a failure of the run); 1 when no job produced a number, or, with --strict, when any row is an
error; 2 on bad input (one line on stderr, before any job runs)."""


@cli.command(epilog=EXIT_STATUSES + "\n\n" + MODEL_SPEC_HELP)
@click.option("--models", callback=names_once,
              help="Comma-separated model specs (see below; default: the reference suite).")
@click.option("--tools", callback=names_once, help="Comma-separated tool ids (default: all).")
@_model_options
@click.option("--batch", type=int, default=None, help="Batch size for reference models (default: their own).")
@click.option("--seq-len", type=int, default=None, help="Sequence length of token models (hf:, preset:).")
@click.option("--out", "out_dir", default="reports", show_default=True, type=click.Path(file_okay=False),
              help="Output directory; the set it holds is replaced as a whole, other files are left alone.")
@_timeout_option("(tool, model) job")
@click.option("--strict", is_flag=True, help="Exit 1 when any row is an error (a tool crashed or timed out).")
@click.option("--quiet", is_flag=True, help="No progress lines.")
@click.option("--fresh", is_flag=True, help="Run every job even if its records are in the cache "
                                            "(~/.cache/reconcile, or $RECONCILE_CACHE_DIR), and overwrite them.")
@memory_option
def run(models: Optional[str], tools: Optional[str], model_file: Optional[str], input_shape: Optional[str],
        batch: Optional[int], seq_len: Optional[int], out_dir: str, timeout: float, strict: bool,
        quiet: bool, fresh: bool) -> None:
    """Run the counters and write records.csv, explanations.csv, report.md (+ models/*.md) and report.html
    into OUT."""
    from . import api
    from . import models as model_specs
    from .progress import printer
    from .records import ERROR, OK
    from .report import write_outputs

    progress = printer(quiet)
    specs = [model_specs.from_model_file(model_file, input_shape)] if model_file else []
    if seq_len is not None:  # token models sized here; plan() sizes the rest by --batch
        specs += [model_specs.resolve(name, batch=batch, seq_len=seq_len) for name in api._split(models) or []]
        models = None
    # with --model-file, --input-shape is that file's; otherwise it applies to the --models reference models
    jobs = api.plan(models, tools, specs, batch, None if model_file else input_shape)
    out = api.prepare_out_dir(out_dir, api.RUN_OUTPUTS)  # before any job: fail fast, write nothing
    started = time.monotonic()
    progress.note(f"running {len(jobs)} jobs ({len({j.tool for j in jobs})} tools x "
                  f"{len({j.spec.name for j in jobs})} models), timeout {timeout:g} s each")
    hits = []  # the jobs whose records came from the result cache

    def counted(done: int, total: int, job, records, seconds: float, cached: bool = False) -> None:
        if cached:
            hits.append(job)
        progress(done, total, job, records, seconds, cached=cached)

    df = api.execute(jobs, timeout, counted, fresh)
    for name, reason in df.attrs["ir_errors"].items():
        click.echo(f"reconcile: {reason}", err=True)
    for ir in df.attrs.get("irs", {}).values():
        if ir is not None:
            warn_conservation(ir)
    paths = write_outputs(df, out, df.attrs["specs"], progress)
    reused = f" ({len(hits)} of {len(jobs)} jobs from the result cache; --fresh runs them)" if hits else ""
    progress.note(f"done in {time.monotonic() - started:.1f} s{reused}; report: {paths['report.md']} "
                  f"(and {paths['report.html'].name}, records.csv, explanations.csv)")
    numbers = int(((df["status"] == OK) & df["value"].notna()).sum())
    errors = int((df["status"] == ERROR).sum())
    rows = f"{errors} error row{'' if errors == 1 else 's'}"
    if numbers == 0:
        click.echo(f"reconcile: no job produced a number ({rows}); see {paths['report.md']}", err=True)
        sys.exit(1)
    if strict and errors:
        click.echo(f"reconcile: {rows} (--strict); see {paths['report.md']}", err=True)
        sys.exit(1)


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


@cli.command("models", epilog=MODEL_SPEC_HELP)
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@click.option("--presets", is_flag=True, help="List the presets (preset:NAME) instead: published transformer "
                                              "architectures, each with the paper table it follows.")
def models_(fmt: str, presets: bool) -> None:
    """The reference models: input shape, forms, whether in the default suite, what each pins down. With
    --presets, the presets: name, aliases, transformers configuration, the paper's parameter count, citation."""
    from . import api

    if presets:
        _echo_frame(_presets_frame(), fmt)
        return
    _echo_frame(api.list_models(), fmt)
    if fmt == "table":
        from reference_models.presets import PRESETS

        from .render import wrap

        click.echo("\n" + "\n".join(wrap(
            f"presets (preset:NAME, {len(PRESETS)}): {', '.join(PRESETS)}; reconcile models --presets lists them "
            "with their papers. Other specs: hf:MODEL_TYPE, module:PACKAGE.MODULE:FACTORY, PATH.py:FACTORY, a "
            ".prototxt (reconcile models --help).")))


def _presets_frame():
    import pandas as pd

    from reference_models.presets import PRESETS

    return pd.DataFrame([{"preset": f"preset:{p.name}", "aliases": ",".join(p.aliases), "hf": p.model_type,
                          "paper_params": p.paper_params, "citation": p.citation} for p in PRESETS.values()],
                        columns=["preset", "aliases", "hf", "paper_params", "citation"])


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
    except (BrokenPipeError, StdoutClosed):
        _drop_stdout()
        sys.exit(0)


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush does not fail on the closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    except OSError:
        pass


def entry() -> None:
    """The console script and `python -m reconcile`: main(), then an exit that skips tearing the interpreter down
    (with torch loaded that is tens of milliseconds, a tenth of a small run). By then every output is written,
    renamed into place and closed, and the workers are gone; a trace worker left for `formulas` dies with this
    process (runner: it asks for a signal when its parent dies). main() itself exits normally, for callers that
    stay alive (tests, notebooks)."""
    code = 0
    try:
        main()
    except SystemExit as exc:
        if isinstance(exc.code, str):  # sys.exit("message"): print it as Python would
            print(exc.code, file=sys.stderr)
            code = 1
        else:
            code = exc.code or 0
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None: started with the descriptor closed (`reconcile models >&-`)
                stream.flush()
        except (BrokenPipeError, OSError, ValueError):  # `reconcile ... | head`: the reader left
            pass
    os._exit(code)
