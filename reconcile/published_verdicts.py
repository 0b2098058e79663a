"""`which` on every number of reference_models/published.csv, from the conventions alone (no tool runs), rendered as
reports/which/published_verdicts.md: `python -m reconcile.published_verdicts [OUT.md]` (`make which-verdicts`).
tests/test_published_verdicts.py checks the same rows against the family each source's own unit definition names."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "reports" / "which" / "published_verdicts.md"
FIRST_CSV_LINE = 2  # the header is line 1: rows are numbered as a reader finds them in the csv


@dataclass(frozen=True)
class PublishedVerdict:
    line: int  # the row's line in published.csv
    model: str
    printed: str  # the csv's printed and unit columns
    unit: str
    text: str  # the printed value and its unit, as `which` reads them
    expected: str  # the family the source's unit definition names
    top: str  # which's first family ("" when none)
    match: str
    relative_error: float | None

    @property
    def right(self) -> bool:
        return self.top == self.expected


def verdicts() -> list[PublishedVerdict]:
    import reference_models

    from . import kept_specs, which

    rows = reference_models.published_numbers()
    # every hf:/preset: model of the table resolved in one job (a job each would import transformers again), those
    # with a compute row traced there too, as `which` traces them; `which` then finds each kept
    requests: dict[tuple, bool] = {}  # request -> traced
    for row in rows:
        if kept_specs.is_kept(row["model"]):
            r = kept_specs.request(row["model"], None, row["input_shape"] or None)
            requests[r] = requests.get(r, False) or row["quantity"] == which.COMPUTE
    for trace in (True, False):
        kept_specs.resolve_kept([r for r, traced in requests.items() if traced == trace], trace=trace)
    out = []
    for line, row in enumerate(rows, FIRST_CSV_LINE):
        text = f"{row['printed']} {row['unit']}".strip()
        result = which.which(row["model"], text, row["quantity"], tools=[],
                             tokens=float(row["tokens"]) if row["tokens"] else None,
                             input_shape=row["input_shape"] or None)
        top = result.top
        out.append(PublishedVerdict(line, row["model"], row["printed"], row["unit"], text, row["expected"],
                                    top.id if top else "",
                                    top.best.match if top else "", top.best.relative_error if top else None))
    return out


def render(rows: list[PublishedVerdict]) -> str:
    right = sum(r.right for r in rows)
    lines = ["# `reconcile which` on every row of reference_models/published.csv", "",
             "Conventions only (`tools=[]`), as `tests/test_published_verdicts.py` runs them. `expected` is the family "
             "the source's own definition of its unit names (the csv column); `top-1` is which's first family; "
             "`match` how close its best member is (exact, as printed = equal at the printed precision, within "
             "tolerance = within 10%). Regenerate: `make which-verdicts`.", "",
             f"Top-1 right: {right} of {len(rows)}.", "",
             "| # | model | printed | expected | top-1 | match | rel. error |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        error = "" if r.relative_error is None else f"{r.relative_error:+.2%}"
        top = r.top if r.right else f"{r.top or 'none'} **(miss)**"
        lines.append(f"| {r.line} | `{r.model}` | {r.text} | {r.expected} | {top} | {r.match} | {error} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else DEFAULT_OUT
    text = render(verdicts())
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".partial")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
