"""Golden snapshots: pin every number the installed tools print on the reference models, and say what changed.

One CSV per tool version, `<golden dir>/<tool>-<version>.csv` (columns GOLDEN_COLUMNS), so a tool upgrade in
constraints.txt shows up as "no golden for thop <new>" plus the differences against the golden of the version
it replaced, each explained by the diff engine's decompositions ("thop 0.1.1.post2209072238 lenet conv1 macs:
golden 299,520 (1*MACC + 1*BIAS) -> now 288,000 (1*MACC): conv bias adds no longer counted"). Messages are not
pinned (they carry paths and reasons, not counts).

Used by `reconcile check` (reconcile/commands/check.py), by tests/test_golden.py, and by users through
`assert_counts` to pin their own model's counts in their own test suite.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Optional, Sequence

import pandas as pd

from . import adapters, drift
from .errors import UserError
from .records import TOTAL

GOLDEN_COLUMNS = ["model", "layer", "metric", "quantity", "value", "status"]
GOLDEN_ENV = "RECONCILE_GOLDEN_DIR"
UPDATE_ENV = "RECONCILE_UPDATE_GOLDEN"
DEFAULT_DIR = Path("tests") / "golden"
UPDATE_COMMAND = "reconcile check --update"

Key = tuple  # (model, layer, quantity, metric, occurrence)


def golden_dir(explicit: "str | Path | None" = None) -> Path:
    return Path(explicit or os.environ.get(GOLDEN_ENV) or DEFAULT_DIR)


def golden_path(directory: Path, tool: str, version: str) -> Path:
    return directory / f"{tool}-{version}.csv"


def goldens_of(directory: Path, tool: str) -> dict[str, Path]:
    """version -> file, for every golden of one tool in the directory."""
    prefix = f"{tool}-"
    return {p.name[len(prefix):-len(".csv")]: p for p in sorted(directory.glob(f"{prefix}*.csv"))}


def newest(versions: Sequence[str]) -> str:
    """The highest PEP 440 version (non-PEP 440 labels such as "seed-000" rank below, by name)."""
    from packaging.version import InvalidVersion, Version

    def order(v: str) -> tuple:
        try:
            return (1, Version(v))
        except InvalidVersion:
            return (0, v)
    return max(versions, key=order)


# -------------------------------------------------------------------------------------------- reading/writing
def _cell(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) if isinstance(value, int) else repr(float(value))


def _parse(text: str):
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)


def snapshot(records: pd.DataFrame) -> pd.DataFrame:
    """One tool version's records reduced to the pinned columns, values as exact text-ready numbers."""
    out = records[GOLDEN_COLUMNS].copy()
    out["value"] = pd.Series([_parse(_cell(v)) for v in records["value"]], dtype=object, index=out.index)
    return out.reset_index(drop=True)


def to_text(golden: pd.DataFrame) -> str:
    out = golden.copy()
    out["value"] = [_cell(v) for v in out["value"]]
    return out[GOLDEN_COLUMNS].to_csv(index=False, lineterminator="\n")


def read(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in GOLDEN_COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"{path}: not a golden file (missing columns {', '.join(missing)})")
    df["value"] = pd.Series([_parse(v) for v in df["value"]], dtype=object, index=df.index)
    return df[GOLDEN_COLUMNS]


def merge(old: Optional[pd.DataFrame], new: pd.DataFrame) -> pd.DataFrame:
    """The golden after `--update`: the run's models replace theirs, other models' rows are kept."""
    if old is None:
        return new
    kept = old[~old["model"].isin(set(new["model"]))]
    order = list(dict.fromkeys(list(old["model"]) + list(new["model"])))
    both = pd.concat([kept, new], ignore_index=True)
    both["_order"] = [order.index(m) for m in both["model"]]
    return both.sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)


# ------------------------------------------------------------------------------------------------- comparing
def keyed(df: pd.DataFrame) -> dict[Key, SimpleNamespace]:
    """Rows by (model, layer, quantity, metric, n-th occurrence): a tool may print one label twice."""
    out: dict[Key, SimpleNamespace] = {}
    seen: dict[tuple, int] = {}
    for row in df.itertuples(index=False):
        base = (row.model, row.layer, row.quantity, row.metric)
        seen[base] = seen.get(base, 0) + 1
        out[base + (seen[base],)] = SimpleNamespace(**row._asdict())
    return out


def same(a: SimpleNamespace, b: SimpleNamespace) -> bool:
    if a.status != b.status:
        return False
    if a.value is None or b.value is None:
        return a.value is None and b.value is None
    return float(a.value) == float(b.value)


def as_record(row: SimpleNamespace, tool: str, version: str) -> SimpleNamespace:
    """A golden/current row in the shape drift.reading decomposes (it needs the tool and version for the
    catalogue entry of that version)."""
    return SimpleNamespace(tool=tool, tool_version=version, model=row.model, layer=row.layer, layer_kind="",
                           quantity=row.quantity, metric=row.metric, value=row.value, status=row.status, message="")


@dataclass
class Change:
    model: str
    layer: str
    quantity: str
    metric: str
    delta: object
    change: str
    text: str


def compare(golden: pd.DataFrame, now: pd.DataFrame, tool: str, golden_version: str, version: str,
            irs: dict) -> list[Change]:
    """Every difference between a golden and the current rows, each in words; totals last, summed by layer."""
    g, c = keyed(golden), keyed(now)
    label = f"{tool} {version}" if golden_version == version else f"{tool} {golden_version} (golden) -> {version}"
    layers, totals = [], []
    for key in list(c) + [k for k in g if k not in c]:
        a, b = g.get(key), c.get(key)
        if a is not None and b is not None and same(a, b):
            continue
        model, layer, quantity, metric, _ = key
        old = drift.reading(as_record(a, tool, golden_version), irs.get(model)) if a is not None else None
        new = drift.reading(as_record(b, tool, version), irs.get(model)) if b is not None else None
        delta, _, change = drift.layer_change(old, new)
        if a is None:
            change = "a new row, not in the golden"
        elif b is None:
            change = "in the golden, no longer produced (the model, the adapter or the tool changed)"
        where = "total" if layer == TOTAL else layer
        text = f"{label} {model} {where} {metric}: golden {drift.state(old)} -> now {drift.state(new)}"
        item = Change(model, layer, quantity, metric, delta, change, text)
        (totals if layer == TOTAL else layers).append(item)
    for item in totals:
        parts = [(x.layer, x.delta, x.change) for x in layers
                 if (x.model, x.quantity, x.metric) == (item.model, item.quantity, item.metric)]
        summary = drift.summarise(parts)
        if item.delta:
            explained = sum(d for _, d, _ in parts if d is not None)
            rest = drift._int(item.delta - explained)
            if rest:
                summary += ("; " if summary else "") + f"{drift.signed(rest)} not attributed to any layer"
            item.text += f" ({drift.signed(item.delta)})"
        item.change = summary or item.change
    for item in layers + totals:
        item.text += f": {item.change}"
    return layers + totals


# ----------------------------------------------------------------------------------------------------- check
@dataclass
class Outcome:
    tool: str
    version: str
    path: Path
    state: str  # match | differs | missing | created | updated | unchanged
    rows: int
    changes: list[Change] = field(default_factory=list)
    against: str = ""  # the other version's golden compared with, when this version has none

    @property
    def failed(self) -> bool:
        return self.state in ("differs", "missing")

    def lines(self) -> list[str]:
        head = {
            "match": f"ok       {self.tool} {self.version}: {self.rows} rows match {self.path}",
            "differs": f"DIFFERS  {self.tool} {self.version}: {len(self.changes)} of {self.rows} rows differ from "
                       f"{self.path}",
            "missing": f"MISSING  {self.tool} {self.version}: no golden file {self.path}"
                       + (f"; the golden of {self.tool} {self.against} is there: the tool was upgraded or "
                          f"downgraded, {len(self.changes)} rows differ from it" if self.against else ""),
            "created": f"created  {self.tool} {self.version}: {self.rows} rows -> {self.path}",
            "updated": f"updated  {self.tool} {self.version}: {len(self.changes)} rows changed -> {self.path}",
            "unchanged": f"same     {self.tool} {self.version}: {self.rows} rows, nothing changed in {self.path}",
        }[self.state]
        return [head] + [f"  - {c.text}" for c in self.changes]


@dataclass
class Report:
    directory: Path
    outcomes: list[Outcome]
    notes: list[str]
    hint: str = ""  # how to regenerate, when not `reconcile check --update` (assert_counts: an env variable)

    @property
    def failed(self) -> bool:
        return any(o.failed for o in self.outcomes)

    def text(self) -> str:
        lines = [f"golden snapshots in {self.directory}"]
        for outcome in self.outcomes:
            lines += outcome.lines()
        lines += [f"note: {n}" for n in self.notes]
        if self.failed:
            differs = sum(o.state == "differs" for o in self.outcomes)
            missing = sum(o.state == "missing" for o in self.outcomes)
            where = "" if self.directory == DEFAULT_DIR else f" --golden-dir {self.directory}"
            lines.append(f"FAILED: {differs} tool version(s) differ from their golden, {missing} have none. If the "
                         f"new numbers are right (a deliberate tool upgrade or model change), regenerate the goldens "
                         f"and review the diff: {self.hint or UPDATE_COMMAND + where}")
        return "\n".join(lines)


def available_tools(names: Optional[Sequence[str]] = None) -> tuple[list[str], list[str]]:
    """(tools to check, notes on the ones that cannot run here). Other adapters are written concurrently: one
    that fails to import is a note, not a crash."""
    chosen, notes = [], []
    for tool in names or adapters.TOOLS:
        try:
            module = adapters.get(tool)
        except UserError:
            raise
        except Exception as exc:  # an adapter module broken or not written yet
            notes.append(f"{tool}: not checked, its adapter does not import ({type(exc).__name__}: {exc})")
            continue
        reason = module.unavailable()
        if reason:
            notes.append(f"{tool}: not checked, {reason}")
            continue
        chosen.append(tool)
    return chosen, notes


def compare_all(records: pd.DataFrame, directory: Path, update: bool, irs: dict) -> list[Outcome]:
    outcomes = []
    for (tool, version), group in records.groupby(["tool", "tool_version"], sort=False):
        path = golden_path(directory, tool, version)
        current = snapshot(group)
        models = set(current["model"])
        existing = read(path) if path.exists() else None
        if update:
            changes = compare(existing[existing["model"].isin(models)], current, tool, version, version, irs) \
                if existing is not None else []
            directory.mkdir(parents=True, exist_ok=True)
            from .api import write_atomic

            write_atomic(path, to_text(merge(existing, current)))
            path.chmod(0o644)  # write_atomic's temp file is private; goldens are ordinary repository files
            state = "created" if existing is None else ("updated" if changes else "unchanged")
            outcomes.append(Outcome(tool, version, path, state, len(current), changes))
        elif existing is not None:
            changes = compare(existing[existing["model"].isin(models)], current, tool, version, version, irs)
            outcomes.append(Outcome(tool, version, path, "differs" if changes else "match", len(current), changes))
        else:
            others = {v: p for v, p in goldens_of(directory, tool).items() if v != version}
            changes, against = [], ""
            if others:
                against = newest(list(others))
                old = read(others[against])
                changes = compare(old[old["model"].isin(models)], current, tool, against, version, irs)
            outcomes.append(Outcome(tool, version, path, "missing", len(current), changes, against))
    return outcomes


def check(tools: Optional[Sequence[str]] = None, models: "str | Sequence[str] | None" = None,
          directory: "str | Path | None" = None, update: bool = False, timeout: float = 120.0,
          progress=None, specs: Sequence = (), fresh: bool = False) -> Report:
    """Run the installed tools (or `tools`) on the reference suite (or `models`, or `specs`) and compare every
    number with the goldens; `update=True` rewrites them instead. Records come through the result cache
    (reconcile/cache.py) unless `fresh`."""
    from .api import frame, plan, run_cached

    directory = golden_dir(directory)
    chosen, notes = available_tools(tools)
    if not chosen:
        return Report(directory, [], notes + ["no tool to check"])
    jobs = plan(models, chosen, specs)
    records = frame(run_cached(jobs, timeout, progress, fresh))
    unique = list({job.spec.name: job.spec for job in jobs}.values())
    return Report(directory, compare_all(records, directory, update, drift.irs_for(unique)), notes)


def assert_counts(module, input_shape: Sequence[int], tools: Sequence[str] = ("thop",),
                  golden: "str | Path" = "tests/golden_counts", name: Optional[str] = None,
                  update: Optional[bool] = None) -> Report:
    """Pin your own nn.Module's counts in your test suite:

        from reconcile.golden import assert_counts
        def test_counts():
            assert_counts(MyNet(), (1, 3, 224, 224), tools=("thop", "torchstat"), golden="tests/golden_counts")

    The first run fails and says how to create the golden (RECONCILE_UPDATE_GOLDEN=1 pytest ...); afterwards a
    changed number fails with what changed, layer by layer, in convention terms."""
    from .api import register_module

    if update is None:
        update = os.environ.get(UPDATE_ENV, "") not in ("", "0")
    spec = register_module(module, input_shape, name or type(module).__name__.lower())
    report = check(tools, [], golden, update, specs=[spec])
    report.hint = f"{UPDATE_ENV}=1 pytest <this test>"
    if report.failed:
        raise AssertionError(report.text())
    return report
