"""`reconcile which MODEL VALUE`: which convention, and which tool, could have printed VALUE for MODEL?"""
from __future__ import annotations

import json
from typing import Optional

import click

from ..helptext import model_spec_help
from ..options import tolerance_fraction


def _family_lines(result, shown: int) -> list[str]:
    from ..which import TOOL

    lines = []
    for i, fam in enumerate(result.families[:shown] if shown else result.families, 1):
        best = fam.best
        c = best.candidate
        tools = [r for r in fam.tools if r.match in ("exact", "as printed")]
        others = [r for r in fam.members if r.candidate.source != TOOL]
        lines.append(f"{i}. {fam.name}: {best.match}, {result.printed.show(c.value)} ({best.relative_error:+.2%}) "
                     f"by {c.label}")
        if tools:
            lines.append("   tools at the printed precision: " + ", ".join(
                f"{r.candidate.tool} {r.candidate.metric} {result.printed.show(r.candidate.value)}" for r in tools))
        if others:
            first = others[0]
            more = f" (and {len(others) - 1} more conventions; --all lists them)" if len(others) > 1 else ""
            if first.candidate.convention != c.label or more:
                lines.append(f"   {first.candidate.convention}{more}")
    if shown and len(result.families) > shown:
        lines.append(f"... {len(result.families) - shown} more families (--limit 0 shows all)")
    return lines


def _flat_table(frame) -> str:
    header = ("rank", "family", "source", "tool/metric", "convention", "value", "rel. error", "match")
    cells = [[str(r.rank), str(r.family_rank), r.source, f"{r.tool} {r.metric}".strip(), r.convention,
              f"{r.value:,}" if isinstance(r.value, int) else f"{r.value:,.6g}", f"{r.relative_error:+.3%}", r.match]
             for r in frame.itertuples(index=False)]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(header)]
    line = lambda c: "  ".join(v.rjust(w) if i in (0, 1, 5, 6) else v.ljust(w)  # noqa: E731
                               for i, (v, w) in enumerate(zip(c, widths)))
    return "\n".join([line(header)] + [line(c) for c in cells])


MAX_COUNT = 10 ** 30  # no network has more FLOPs or parameters; a VALUE beyond it is a typo


def _check_value(value: str) -> None:
    """VALUE is a positive count a paper could print: huge exponents (1e1000000) and tiny ones (1e-400) are
    refused here, in one line, instead of overflowing the arithmetic later."""
    from ..errors import UserError
    from ..which import parse_value

    try:
        printed = parse_value(value)
        number = float(printed.value)
    except (ArithmeticError, ValueError, OverflowError):
        number = float("inf")
    if not 1 <= number <= MAX_COUNT:
        raise UserError(f"VALUE {value[:40]!r} is not a count a paper could print: expected a number between 1 "
                        f"and 1e30, e.g. 3.8e9, 300M or 2307720")


def _usable_records(path):
    """--records: a records.csv with the records columns (else one line); '' when its output set is not one
    complete run (the manifest check fails), with a note."""
    import csv

    from ..api import MANIFEST, check_outputs
    from ..errors import UserError
    from ..records import COLUMNS

    if not path.exists():
        return str(path)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"--records {path}: cannot read it as CSV ({type(exc).__name__})") from None
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise UserError(f"--records {path}: not a records.csv of `reconcile run` (missing columns "
                        f"{', '.join(missing)})")
    if (path.parent / MANIFEST).exists() and any(p.startswith(path.name + ":") for p in check_outputs(path.parent)):
        click.echo(f"note: {path} is not the file its run's manifest lists (an interrupted write?); not used",
                   err=True)
        return ""
    return str(path)


@click.command("which", epilog=model_spec_help())
@click.argument("args", nargs=-1, metavar="[MODEL] VALUE")
@click.option("--model-file", help="PATH.py:FACTORY, FACTORY returns a torch nn.Module (instead of MODEL).")
@click.option("--input-shape", help="N,C,H,W for --model-file (or to override a reference model's).")
@click.option("--quantity", type=click.Choice(["compute", "params", "train-compute"]), default="compute",
              show_default=True, help="What VALUE claims to count (a unit word such as 'params' in VALUE sets it "
                                      "too; train-compute: training FLOPs of a token model over --tokens tokens).")
@click.option("--tokens", default=None, help="Training tokens D for --quantity train-compute (e.g. 300e9).")
@click.option("--seq-len", type=int, default=None, help="Sequence length of a token model (train-compute; default: "
                                                       "its maximum positions, at most 1024).")
@click.option("--tolerance", type=float, default=0.1, show_default=True, callback=tolerance_fraction,
              help="Largest relative error listed (exact and as-printed matches are always listed).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--all", "show_all", is_flag=True, help="The flat list of every candidate instead of the families.")
@click.option("--tools", help="Comma-separated tool ids to include (default: all; '' for conventions only).")
@click.option("--no-run", is_flag=True, help="Never run a tool: use cached runs and reports/records.csv only.")
@click.option("--batch", type=int, default=None, help="Batch size (default: the model's own); adds per-sample "
                                                     "conventions when above 1.")
@click.option("--limit", type=int, default=5, show_default=True,
              help="Families shown (with --all: candidates shown); 0: all.")
@click.option("--cache-dir", default=None, help="Run cache (default: $RECONCILE_RUN_CACHE or .cache/runs).")
@click.option("--records", "records_path", default="reports/records.csv", show_default=True,
              help="A run's records.csv to reuse when it covers MODEL ('' to ignore).")
def command(args: tuple[str, ...], model_file: Optional[str], input_shape: Optional[str], quantity: str,
            tokens: Optional[str], seq_len: Optional[int], tolerance: float, fmt: str, show_all: bool,
            tools: Optional[str], no_run: bool, batch: Optional[int], limit: int, cache_dir: Optional[str],
            records_path: str) -> None:
    """Which convention (or tool) could have produced VALUE for MODEL?

    VALUE as printed, with its unit if any: 4.1G, "4.1 GFLOPs", "300M MAdds", "3.8 billion FLOPs",
    "15300 Million Mult-Adds", 1.8x10^9, 3.8e9. The printed digits set the tolerance of a match; a unit word
    favours the families it names. The first line is the verdict: the family of conventions that matches, and
    the tools whose own printed total lands there."""
    from pathlib import Path

    from .. import which as which_mod
    from ..api import _split
    from ..errors import UserError
    from ..progress import printer

    if len(args) not in (1, 2) or (len(args) == 1) != bool(model_file):
        raise UserError("usage: reconcile which MODEL VALUE, or reconcile which --model-file PATH.py:FACTORY "
                        "--input-shape N,C,H,W VALUE")
    model, value = (None, args[0]) if len(args) == 1 else args
    if limit < 0:
        raise UserError(f"--limit must be 0 or more, not {limit}")
    _check_value(value)
    # --- issue 13: training compute of a token model, ranked by conventions/llm.py (no tool runs) ---
    if quantity == "train-compute" or tokens is not None:
        _train_compute(model, value, quantity, tokens, seq_len, fmt, limit)
        return
    # ---
    if records_path:
        records_path = _usable_records(Path(records_path))
    names = None if tools is None else (_split(tools) or [])
    result = which_mod.which(model, value, quantity, tolerance, names, run=not no_run, batch=batch,
                             cache_dir=cache_dir, report_records=Path(records_path) if records_path else None,
                             progress=printer(quiet=fmt != "table"), model_file=model_file,
                             input_shape=input_shape)
    full = result.frame()
    if fmt == "csv":
        if not show_all:
            full = full.drop_duplicates("family_rank")
        frame = full.head(limit) if limit else full
        click.echo(frame.to_csv(index=False, lineterminator="\n"), nl=False)
        return
    if fmt == "json":
        families = [{"rank": i, "family": fam.name, "match": fam.best.match, "value": fam.best.candidate.value,
                     "relative_error": round(fam.best.relative_error, 6),
                     "tools": [f"{r.candidate.tool} {r.candidate.tool_version} {r.candidate.metric}"
                               for r in fam.tools if r.match in ("exact", "as printed")],
                     "members": len(fam.members)}
                    for i, fam in enumerate(result.families, 1)]
        payload = {"model": result.model, "quantity": result.quantity, "printed": str(result.printed),
                   "value": float(result.printed.value), "half_unit": float(result.printed.half_unit),
                   "unit": result.printed.unit, "verdict": result.verdict(), "unit_note": result.unit_note(),
                   "families": families, "notes": result.notes}
        if show_all:
            payload["candidates"] = json.loads(full.to_json(orient="records"))
        click.echo(json.dumps(payload, indent=2))
        return
    _print_table(result, full, show_all, limit)


def _print_table(result, full, show_all: bool, limit: int) -> None:
    """The default output, for a person: the verdict's first clause as the first line (under 120 characters),
    its other clauses and the unit note indented below it, then the families; reasons shared by several tools
    said once."""
    from ..render import INDENT, headline, once, wrap

    lines = headline(result.verdict())
    if result.unit_note():
        lines += wrap(result.unit_note(), INDENT)
    lines.append("")
    if show_all:
        lines += _flat_table(full.head(limit) if limit else full).split("\n")  # a table: its rows stay whole
        if limit and len(full) > limit:
            lines.append(f"... {len(full) - limit} more (--limit 0 shows all)")
    else:
        for line in _family_lines(result, limit):
            indent = line[:len(line) - len(line.lstrip())]
            number = line.split(" ", 1)[0] if not indent else ""  # "1. family ...": continue under the family
            lines += wrap(line.strip(), indent, hang=" " * (len(number) + 1) + INDENT if number else "")
    for note in result.notes:
        lines += wrap(f"note: {note}")
    for tools, reason, _ in once([tuple(line.split(": ", 1)) if ": " in line else (line, "") for line in
                               result.unavailable], "tools"):
        lines += wrap(f"no total from {tools}" + (f": {reason}" if reason else ""))
    click.echo("\n".join(lines))


def _train_compute(model: str, value: str, quantity: str, tokens: Optional[str], seq_len: Optional[int], fmt: str,
                   limit: int) -> None:
    """`which MODEL VALUE --quantity train-compute --tokens D`: every training-compute convention of
    conventions/llm.py times D, closest to VALUE first."""
    from conventions import llm

    from .. import models
    from ..cli import _parse_tokens
    from ..errors import UserError
    from ..which import parse_value

    if quantity != "train-compute" or tokens is None:
        raise UserError("--tokens goes with --quantity train-compute (both are needed)")
    printed = parse_value(value)
    spec = models.resolve(model, seq_len=seq_len) if model.startswith(("hf:", "preset:")) else models.resolve(model)
    shapes = models.llm_shapes(spec)
    if shapes is None:
        raise UserError(f"--quantity train-compute needs a token model (hf:, preset:), not {model!r}")
    n_tokens = _parse_tokens(tokens)
    ranked = llm.rank_training_compute(shapes, float(printed.value), n_tokens)
    shown = ranked[:limit] if limit else ranked

    def match(r) -> str:  # rounds to the digits printed (3.14e23: anything in [3.135e23, 3.145e23])
        return "as printed" if abs(r.value - float(printed.value)) <= float(printed.half_unit) else ""
    if fmt == "csv":
        click.echo("rank,convention,value,relative_error,match,basis,citation")
        for i, r in enumerate(shown, 1):
            click.echo(f'{i},"{r.name}",{r.value:.6g},{r.relative_error:.6f},{match(r)},"{r.basis}","{r.citation}"')
        return
    click.echo(f"{spec.name}: which training-compute convention gives {printed} for {n_tokens:.4g} tokens "
               f"(seq_len {shapes.n_ctx})?")
    width = max(len(r.name) for r in shown)
    for i, r in enumerate(shown, 1):
        click.echo(f"{i:>2}  {r.name:<{width}}  {r.value:.4g}  {r.relative_error:+8.3%}  {match(r):<10}  {r.basis}")
    click.echo("")
    for i, r in enumerate(shown, 1):
        click.echo(f"[{i}] {r.citation}")
