"""`reconcile sweep`'s outputs (reconcile/sweep.py makes the rows): DIR/sweep.csv (one row per model, plus tool
rows), DIR/summary.md (counts, every failure with its reason, every conservation gap and every difference from the
oracles with what explains it), both deterministic, and DIR/timings.csv (seconds per model: not deterministic,
kept apart). Apart from the rows' code so that a change of layout does not invalidate cached rows."""
from __future__ import annotations

import csv
import io
from collections import Counter
from typing import Any, Optional

from .sweep import (EXACT, EXPLAINED, MODEL_ROW, ROW_COLUMNS, TRACED, UNEXPLAINED, SweepJob, versions_of)


def metadata_matches(row: dict[str, Any]) -> tuple[Optional[bool], Optional[bool]]:
    """(params == num_params, MACC rounds to _ops at its 3 decimals of GMAC) for a torchvision row."""
    if row.get("metadata_params") in ("", None) or row.get("params_reference") in ("", None):
        return None, None
    params = int(row["params_reference"]) == int(row["metadata_params"])
    gmacc = float(str(row["metadata_macc"]).removesuffix("e9"))
    macc = round(int(row["macc_reference"]) / 1e9, 3) == round(gmacc, 3)
    return params, macc


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


CELL_CHARS = 160  # a cell's text at most (the attempts before a fallback can run long): the table stays small


def to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ROW_COLUMNS)
    for row in rows:
        writer.writerow([_cell(row.get(c))[:CELL_CHARS] for c in ROW_COLUMNS])
    return out.getvalue()


def from_csv(text: str) -> list[dict[str, Any]]:
    """Rows read back from a sweep.csv (values as text): `summary` and `to_csv` give the same pages again."""
    return list(csv.DictReader(io.StringIO(text)))


def timings_csv(jobs: list[SweepJob], seconds: dict[str, float]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("registry", "model", "seconds", "cached"))
    for job in jobs:
        took = seconds.get(job.key)
        if took is not None:
            writer.writerow((job.registry, job.name, f"{took:.2f}", "yes" if took == 0.0 else "no"))
    return out.getvalue()


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def summary(registry: str, sizes: str, rows: list[dict[str, Any]], versions: str) -> str:
    """The page: how many built and traced, how many conserve, every failure and every remaining difference."""
    models = [r for r in rows if r["tool"] == MODEL_ROW]
    traced = [r for r in models if r["status"] == TRACED]
    n = len(models)
    both = [r for r in traced if r["params_law"] == EXACT and r["macc_law"] == EXACT]
    exact_oracle = [r for r in traced if r["gap_verdict"] == EXACT]
    params_oracle = [r for r in traced if str(r["params_reference"]) == str(r["params_oracle"])]
    explained = [r for r in traced if r["gap_verdict"] == EXPLAINED]
    unexplained = [r for r in traced if r["gap_verdict"] == UNEXPLAINED]
    params_law = [r for r in traced if r["params_law"] == EXACT]
    macc_law = [r for r in traced if r["macc_law"] == EXACT]
    lines = [f"# reconcile sweep {registry}" + (f" (--sizes {sizes})" if registry == "hf" else ""), "",
             f"{versions}. One row per model in [sweep.csv](sweep.csv); seconds per model in timings.csv.", "",
             "| | models | share |", "|---|---:|---:|", f"| models | {n} | |",
             _line("built and traced", traced, n, "models"),
             _line("params law exact (layer rows == sum(p.numel()))", params_law, len(traced)),
             _line("MACC law exact (layer rows == op table over the executed ops)", macc_law, len(traced)),
             _line("both laws exact", both, len(traced)),
             _line("params printed == sum(p.numel())", params_oracle, len(traced)),
             _line("MACC == FlopCounterMode / 2 (eager attention and experts)", exact_oracle, len(traced)),
             _line("MACC differs from FlopCounterMode / 2, explained by op", explained, len(traced)),
             _line("MACC differs from FlopCounterMode / 2, not explained", unexplained, len(traced))]
    if registry == "torchvision":
        matches = [metadata_matches(r) for r in traced]
        lines.append(f"| params == weights meta num_params | {sum(m[0] is True for m in matches)} | "
                     f"{_pct(sum(m[0] is True for m in matches), len(traced))} of traced |")
        lines.append(f"| MACC == weights meta _ops (GMAC, 3 decimals) | {sum(m[1] is True for m in matches)} | "
                     f"{_pct(sum(m[1] is True for m in matches), len(traced))} of traced |")
    statuses = Counter(r["status"] for r in models if r["status"] != TRACED)
    if statuses:
        lines += ["", "## Not built or not traced", "",
                  ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items())), "",
                  "| model | status | reason |", "|---|---|---|"]
        lines += [f"| {r['model']} | {r['status']} | {_md(r['reason'])} |" for r in models if r["status"] != TRACED]
    laws = [r for r in traced if r["params_law"] != EXACT or r["macc_law"] != EXACT]
    if laws:
        lines += ["", "## Conservation gaps", "", "| model | params gap | MACC gap | unsupported ops |",
                  "|---|---:|---:|---|"]
        lines += [f"| {r['model']} | {r['params_gap']} | {r['macc_law_gap']} | {r['unsupported_ops']} |"
                  for r in laws]
    differ = [r for r in traced if r["gap_verdict"] != EXACT]
    if differ:
        lines += ["", "## MACC against FlopCounterMode / 2", "",
                  "| model | reference | FlopCounterMode / 2 | gap | verdict | by op |", "|---|---:|---:|---:|---|---|"]
        lines += [f"| {r['model']} | {_num(r['macc_reference'])} | {_num(r['macc_oracle'])} | {_num(r['macc_gap'])} "
                  f"| {r['gap_verdict']} | {_md(r['gap_kind'])} |" for r in differ]
    if registry == "torchvision":
        lines += ["", "## Weights metadata", "", "| model | params | num_params | MACC | _ops (GMAC) |",
                  "|---|---:|---:|---:|---:|"]
        lines += [f"| {r['model']} | {_num(r['params_reference'])} | {_num(r['metadata_params'])} | "
                  f"{_num(r['macc_reference'])} | {r['metadata_macc']} |" for r in traced]
    tools = [r for r in rows if r["tool"] != MODEL_ROW]
    if tools:
        lines += ["", "## Tools", "", "| model | tool | version | metric | total | residual | status |",
                  "|---|---|---|---|---:|---|---|"]
        lines += [f"| {r['model']} | {r['tool']} | {r['tool_version']} | {r['tool_metric']} | {_num(r['tool_value'])} "
                  f"| {r['tool_residual']} | {r['status']} |" for r in tools]
    return "\n".join(lines) + "\n"


def _line(label: str, rows: list, whole: int, of: str = "traced") -> str:
    return f"| {label} | {len(rows)} | {_pct(len(rows), whole)} of {of} |"


def _num(value: Any) -> str:
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return _cell(value)


def _md(text: Any) -> str:
    return _cell(text).replace("|", "\\|").replace("\n", " ")


def write(out_dir, registry: str, sizes: str, jobs: list[SweepJob], rows: list[dict[str, Any]],
          seconds: dict[str, float]) -> dict:
    from .api import write_set

    versions = versions_of(registry)
    files = {"sweep.csv": to_csv(rows), "summary.md": summary(registry, sizes, rows, versions),
             "timings.csv": timings_csv(jobs, seconds)}
    return write_set(out_dir, files)
