"""`reconcile which MODEL VALUE`: which convention, and which tool, could have printed VALUE for MODEL?"""
from __future__ import annotations

import json
from typing import Optional

import click

from ..helptext import model_spec_help
from ..options import memory_option, tolerance_fraction


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
        if c.citation:
            lines.append(f"   {c.citation}")
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


def _check_value(value: str, unit: Optional[str] = None) -> None:
    """VALUE is a positive count a paper could print: huge exponents (1e1000000) and tiny ones (1e-400) are
    refused here, in one line, instead of overflowing the arithmetic later."""
    from ..errors import UserError
    from ..which import parse_value

    try:
        printed = parse_value(value, unit)
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
    from ..records import COLUMNS, IDENTITY_COLUMNS

    if not path.exists():
        return str(path)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"--records {path}: cannot read it as CSV ({type(exc).__name__})") from None
    missing = [c for c in COLUMNS if c not in header and c not in IDENTITY_COLUMNS]
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
@click.option("--unit", default=None, help="The unit of a bare VALUE, as the column header prints it: 'FLOPs (B)', "
                                           "'params (M)', 'MAdds', 'Total train compute (PF-days)'.")
@click.option("--quantity", type=click.Choice(["compute", "params", "train-compute"]), default=None,
              help="What VALUE counts (default: what its unit says, else compute; --tokens: train-compute). "
                   "train-compute: training FLOPs of a token model over --tokens tokens.")
@click.option("--tokens", default=None, help="Training tokens D for --quantity train-compute (e.g. 300e9).")
@click.option("--seq-len", type=int, default=None, help="Sequence length of a token model (default: its maximum "
                                                       "positions, at most 1024).")
@click.option("--confirm", is_flag=True, help="Confirm the answer with the tools: run (in parallel, each printed as "
                                              "it finishes) the tools whose catalogued convention can land in the "
                                              "candidate families; train-compute: measure one training step.")
@click.option("--measure/--no-measure", default=None,
              help="train-compute: rank beside the formulas one training step measured in a job (forward + "
                   "backward traced; default: with --confirm).")
@click.option("--table", "table", default=None, metavar="FILE.csv",
              help="A paper's table instead of MODEL VALUE: columns model, printed and optionally unit, quantity, "
                   "tokens, seq_len, input_shape, label. A verdict per row and one for the table; --confirm and "
                   "--tools confirm each row as they do one number.")
@click.option("--tolerance", type=float, default=0.1, show_default=True, callback=tolerance_fraction,
              help="Largest relative error listed (exact and as-printed matches are always listed).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--all", "show_all", is_flag=True, help="The flat list of every candidate instead of the families.")
@click.option("--tools", help="Comma-separated tool ids to confirm with (cached, else run); '' for the conventions "
                              "only. Default: the tools that can land, from the cache (run with --confirm).")
@click.option("--no-run", is_flag=True, help="Never run a tool: use cached runs and reports/records.csv only.")
@click.option("--batch", type=int, default=None, help="Batch size (default: the model's own); adds per-sample "
                                                     "conventions when above 1.")
@click.option("--limit", type=int, default=5, show_default=True,
              help="Families shown (with --all: candidates shown); 0: all.")
@click.option("--cache-dir", default=None, help="The cache folder (default: the one `reconcile run` uses, "
                                               "$RECONCILE_CACHE_DIR or ~/.cache/reconcile).")
@click.option("--records", "records_path", default="reports/records.csv", show_default=True,
              help="A run's records.csv to reuse when it covers MODEL ('' to ignore).")
@memory_option
def command(args: tuple[str, ...], model_file: Optional[str], input_shape: Optional[str], unit: Optional[str],
            quantity: Optional[str], tokens: Optional[str], seq_len: Optional[int], table: Optional[str],
            tolerance: float, fmt: str, show_all: bool, tools: Optional[str], no_run: bool, batch: Optional[int],
            limit: int, cache_dir: Optional[str], records_path: str, confirm: bool = False,
            measure: Optional[bool] = None) -> None:
    """Which convention (or tool) could have produced VALUE for MODEL?

    VALUE as printed, with its unit if any: 4.1G, "4.1 GFLOPs", "300M MAdds", "3.8 billion FLOPs",
    "15300 Million Mult-Adds", 1.8x10^9, 3.8e9, "25.6M params", "Total Parameters=110M", "3.64E+03 PF-days";
    a bare number with --unit "FLOPs (B)". The printed digits set the tolerance of a match; the unit says what
    is counted. The first line is the verdict: the family of conventions that matches, what decided it, and the
    tools whose own printed total lands there. The answer comes from the conventions (the model's layer IR or a
    token model's shapes: no counting tool runs); tool runs already in the cache are used, and --confirm runs
    the tools that can land. `--table FILE.csv` reads a whole table of a paper."""
    from pathlib import Path

    from .. import which as which_mod
    from ..api import _split
    from ..cli import _parse_tokens
    from ..errors import UserError
    from ..progress import printer

    if limit < 0:
        raise UserError(f"--limit must be 0 or more, not {limit}")
    names = None if tools is None else (_split(tools) or [])
    if records_path:
        records_path = _usable_records(Path(records_path))
    report_records = Path(records_path) if records_path else None
    if table is not None:
        if args or model_file:
            raise UserError("--table FILE.csv replaces MODEL VALUE: give one or the other")
        _table(which_mod, table, tolerance, names, not no_run, cache_dir, report_records, fmt, confirm)
        return
    if len(args) not in (1, 2) or (len(args) == 1) != bool(model_file):
        raise UserError("usage: reconcile which MODEL VALUE, reconcile which --model-file PATH.py:FACTORY "
                        "--input-shape N,C,H,W VALUE, or reconcile which --table FILE.csv")
    model, value = (None, args[0]) if len(args) == 1 else args
    _check_value(value, unit)
    result = which_mod.which(model, value, quantity, tolerance, names, run=not no_run, batch=batch,
                             cache_dir=cache_dir, report_records=report_records,
                             progress=printer(quiet=fmt != "table"), model_file=model_file,
                             input_shape=input_shape, unit=unit, tokens=_parse_tokens(tokens), seq_len=seq_len,
                             measure=measure, confirm=confirm)
    full = result.frame()
    if fmt == "csv":
        if not show_all:
            full = full.drop_duplicates("family_rank")
        frame = full.head(limit) if limit else full
        click.echo(frame.to_csv(index=False, lineterminator="\n"), nl=False)
        return
    if fmt == "json":
        click.echo(json.dumps(result.to_json(show_all), indent=2))
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
    for hint in result.hints:
        lines += wrap(f"hint: {hint}", INDENT)
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


def _table(which_mod, path: str, tolerance: float, tools: Optional[list], run: bool, cache_dir, report_records,
           fmt: str, confirm: bool) -> None:
    """`which --table FILE.csv`: each row's verdict as it is found (stderr), then the table's; --confirm and
    --tools confirm each row as they do one number."""
    import csv
    import io

    def progress(row) -> None:
        if fmt == "table":
            click.echo(f"[row {row.index}] {row.label + ': ' if row.label else ''}"
                       f"{row.result.verdict() if row.result is not None else row.error}", err=True)

    result = which_mod.which_table(path, tolerance, tools, run, cache_dir, report_records, on_row=progress,
                                   confirm=confirm)
    if fmt == "json":
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["row", "label", "model", "printed", "family", "match", "agrees", "verdict"])
        for row in result.rows:
            top = row.result.top if row.result is not None else None
            writer.writerow([row.index, row.label, row.model, row.text, top.id if top else "",
                             top.best.match if top else "", row.index in result.agree,
                             row.result.verdict() if row.result is not None else row.error])
        click.echo(out.getvalue(), nl=False)
        return
    click.echo("\n".join(result.lines()))
