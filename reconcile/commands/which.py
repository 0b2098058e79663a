"""`reconcile which MODEL VALUE`: which convention, and which tool, could have printed VALUE for MODEL?"""
from __future__ import annotations

import json
from typing import Optional

import click


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


@click.command("which")
@click.argument("args", nargs=-1, metavar="[MODEL] VALUE")
@click.option("--model-file", help="PATH.py:FACTORY, FACTORY returns a torch nn.Module (instead of MODEL).")
@click.option("--input-shape", help="N,C,H,W for --model-file (or to override a reference model's).")
@click.option("--quantity", type=click.Choice(["compute", "params"]), default="compute", show_default=True,
              help="What VALUE claims to count (a unit word such as 'params' in VALUE sets it too).")
@click.option("--tolerance", type=float, default=0.1, show_default=True,
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
            tolerance: float, fmt: str, show_all: bool, tools: Optional[str], no_run: bool, batch: Optional[int],
            limit: int, cache_dir: Optional[str], records_path: str) -> None:
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
    click.echo(result.verdict())
    if result.unit_note():
        click.echo(result.unit_note())
    click.echo("")
    if show_all:
        click.echo(_flat_table(full.head(limit) if limit else full))
        if limit and len(full) > limit:
            click.echo(f"... {len(full) - limit} more (--limit 0 shows all)")
    else:
        click.echo("\n".join(_family_lines(result, limit)))
    for note in result.notes:
        click.echo(f"note: {note}")
    for line in result.unavailable:
        click.echo(f"no total from {line}")
