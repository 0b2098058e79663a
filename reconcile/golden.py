"""Golden snapshots: pin every number the installed tools print on the reference models, and say what changed.

One CSV per tool version, `<golden dir>/<tool>-<version>.csv` (columns GOLDEN_COLUMNS), so a tool upgrade in
constraints.txt shows up as "no golden for thop <new>" plus the differences against the golden of the version
it replaced, each explained by the diff engine's decompositions ("thop 0.1.1.post2209072238 lenet conv1 macs:
golden 299,520 (1*MACC + 1*BIAS) -> now 288,000 (1*MACC): conv bias adds no longer counted"). Messages are not
pinned (they carry paths and reasons, not counts).

Beside the goldens, `<golden dir>/layers/<model>.csv` keeps each layer's kind and basis terms as they were when
the golden was written, so a changed number is decomposed on the layer it was counted on: a conv that gained a
bias, or whose stride moved, reads "the layer itself changed (...); same convention (1*MACC)", not as a change of
the tool's convention (reconcile/changes.py words both).

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

from . import adapters, changes
from .diff import some as _some
from .errors import UserError
from .records import TOTAL
from .render import wrap, write_atomic

GOLDEN_COLUMNS = ["model", "layer", "metric", "quantity", "value", "status"]
GOLDEN_ENV = "RECONCILE_GOLDEN_DIR"
UPDATE_ENV = "RECONCILE_UPDATE_GOLDEN"
VERBOSE_ENV = "RECONCILE_GOLDEN_VERBOSE"  # assert_counts: every differing row instead of the short diff
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


MAX_GOLDEN_BYTES = 64 * 2 ** 20


def read(path: Path) -> pd.DataFrame:
    """A golden file, checked line by line: a malformed one is a UserError naming the file, the line and the
    reason (never a pandas traceback, never a silent pass)."""
    import csv
    import io

    from .records import STATUSES

    def bad(line: int, reason: str) -> UserError:
        return UserError(f"{path}:{line}: {reason}; regenerate it with {UPDATE_COMMAND}")

    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_GOLDEN_BYTES + 1)
    except OSError as exc:
        raise UserError(f"{path}: cannot read the golden ({exc.strerror or exc})") from None
    if len(data) > MAX_GOLDEN_BYTES:
        raise bad(1, f"larger than {MAX_GOLDEN_BYTES // 2 ** 20} MB")
    if b"\0" in data:
        raise bad(data[:data.index(b"\0")].count(b"\n") + 1, "binary data (a NUL byte), not CSV text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad(data[:exc.start].count(b"\n") + 1, "not UTF-8 text") from None
    if not text.strip():
        raise bad(1, f"empty; a golden starts with the header {','.join(GOLDEN_COLUMNS)}")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows = []
    try:
        header = next(reader)
        if header != GOLDEN_COLUMNS:
            missing = [c for c in GOLDEN_COLUMNS if c not in header]
            extra = [c for c in header if c not in GOLDEN_COLUMNS]
            detail = (f"missing columns {', '.join(missing)}" if missing else "") + \
                     ("; " if missing and extra else "") + (f"extra columns {', '.join(extra)}" if extra else "")
            raise bad(1, f"not a golden file: header {','.join(header)!r}, expected "
                         f"{','.join(GOLDEN_COLUMNS)} ({detail or 'another order'})")
        for fields in reader:
            line = reader.line_num
            if not fields:
                continue
            if len(fields) != len(GOLDEN_COLUMNS):
                raise bad(line, f"{len(fields)} fields, expected {len(GOLDEN_COLUMNS)}")
            row = dict(zip(GOLDEN_COLUMNS, fields))
            if row["status"] not in STATUSES:
                raise bad(line, f"status {row['status']!r} is not one of {', '.join(STATUSES)}")
            try:
                row["value"] = _parse(row["value"])
            except ValueError:
                raise bad(line, f"value {row['value'][:40]!r} is not a number") from None
            if isinstance(row["value"], float) and row["value"] != row["value"]:
                raise bad(line, "value is NaN")
            if (row["value"] is None) != (row["status"] != "ok"):
                raise bad(line, f"an {row['status']} row {'needs' if row['status'] == 'ok' else 'has'} a value")
            rows.append(row)
    except csv.Error as exc:
        raise bad(reader.line_num, f"malformed CSV ({exc})") from None
    df = pd.DataFrame(rows, columns=GOLDEN_COLUMNS)
    df["value"] = pd.Series([r["value"] for r in rows], dtype=object, index=df.index)
    return df


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
    """A golden/current row in the shape changes.reading decomposes (it needs the tool and version for the
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
    was: str = ""  # the golden's number as a sentence shows it ("3,888 (1*MACC)")
    now: str = ""
    network: str = ""  # how the layer itself changed in its terms ("MACC 3,888 -> 4,860"), "" if it did not

    @property
    def same_convention(self) -> bool:
        """Only the network moved: the tool counts this layer the way it did."""
        return bool(self.network) and "same convention" in self.change


# ------------------------------------------------------------------------------------------- layer terms
LAYER_COLUMNS = ["layer", "kind", "key", "batch", "terms"]


def layers_path(directory: Path, model: str) -> Path:
    """<golden dir>/layers/<the model's file stem>.csv (reconcile.identity: a reference model's name, any other
    spec's sanitised text and hash; never a path that leaves the folder)."""
    from .identity import inside, stem

    try:
        return inside(Path(directory), "layers", f"{stem(model)}.csv")
    except ValueError:
        raise UserError(f"{Path(directory) / 'layers'} leads outside {directory} (a symbolic link): layer terms "
                        "are never read or written through one") from None


def layers_text(layers: dict[str, changes.LayerTerms]) -> str:
    rows = [{"layer": name, "kind": lt.kind, "key": lt.key, "batch": lt.batch,
             "terms": " ".join(f"{t}={v}" for t, v in lt.terms)} for name, lt in layers.items()]
    return pd.DataFrame(rows, columns=LAYER_COLUMNS).to_csv(index=False, lineterminator="\n")


def read_layers(directory: Path, model: str) -> Optional[dict[str, changes.LayerTerms]]:
    """The layer terms the goldens of `model` were taken on; None for goldens written before they were kept."""
    import csv
    import io
    import re

    path = layers_path(directory, model)
    if not path.is_file():
        return None

    def bad(line: int, reason: str) -> UserError:
        return UserError(f"{path}:{line}: {reason}; regenerate it with {UPDATE_COMMAND}")

    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_GOLDEN_BYTES + 1)
        text = data.decode("utf-8")
    except OSError as exc:
        raise UserError(f"{path}: cannot read the layer terms ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise bad(data[:exc.start].count(b"\n") + 1, "not UTF-8 text") from None
    if len(data) > MAX_GOLDEN_BYTES or "\0" in text:
        raise bad(1, "not a layer-terms CSV (binary data or too large)")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    out = {}
    try:
        header = next(reader, None)
        if header != LAYER_COLUMNS:
            raise bad(1, f"header {','.join(header or [])[:80]!r}, expected {','.join(LAYER_COLUMNS)}")
        for fields in reader:
            if not fields:
                continue
            if len(fields) != len(LAYER_COLUMNS):
                raise bad(reader.line_num, f"{len(fields)} fields, expected {len(LAYER_COLUMNS)}")
            row = dict(zip(LAYER_COLUMNS, fields))
            pairs = row["terms"].split()
            if not row["batch"].isdigit() or not all(re.fullmatch(r"[A-Z_]+=-?\d{1,30}", p) for p in pairs):
                raise bad(reader.line_num, f"batch {row['batch'][:20]!r} or terms {row['terms'][:40]!r} are not "
                                           "a whole number and TERM=count pairs")
            terms = tuple((pair.split("=")[0], int(pair.split("=")[1])) for pair in pairs)
            out[row["layer"]] = changes.LayerTerms(row["kind"], row["key"], terms, int(row["batch"]))
    except csv.Error as exc:
        raise bad(reader.line_num, f"malformed CSV ({exc})") from None
    return out


def compare(golden: pd.DataFrame, now: pd.DataFrame, tool: str, golden_version: str, version: str,
            irs: dict, then: Optional[dict] = None) -> list[Change]:
    """Every difference between a golden and the current rows, each in words; totals last, summed by layer.
    `irs`: each model's layer IR now; `then`: each model's layer terms when the golden was written (None or a
    missing model: read the golden on today's layers)."""
    g, c = keyed(golden), keyed(now)
    label = f"{tool} {version}" if golden_version == version else f"{tool} {golden_version} (golden) -> {version}"
    layers_now = {model: changes.ir_layer_terms(ir) for model, ir in irs.items()}
    layers_then = {model: ((then or {}).get(model) or layers_now.get(model, {})) for model in irs}
    layers, totals = [], []
    for key in list(c) + [k for k in g if k not in c]:
        a, b = g.get(key), c.get(key)
        if a is not None and b is not None and same(a, b):
            continue
        model, layer, quantity, metric, _ = key
        old = changes.reading(as_record(a, tool, golden_version), layers_then.get(model, {})) \
            if a is not None else None
        new = changes.reading(as_record(b, tool, version), layers_now.get(model, {})) if b is not None else None
        delta, _, change = changes.layer_change(old, new)
        if a is None:
            change = "a new row, not in the golden"
        elif b is None:
            change = "in the golden, no longer produced (the model, the adapter or the tool changed)"
        where = "total" if layer == TOTAL else layer
        text = f"{label} {model} {where} {metric}: golden {changes.state(old)} -> now {changes.state(new)}"
        network = changes.layer_difference(old.layer, new.layer) if old is not None and new is not None else ""
        item = Change(model, layer, quantity, metric, delta, change, text, changes.state(old), changes.state(new),
                      network)
        (totals if layer == TOTAL else layers).append(item)
    for item in totals:
        parts = [(x.layer, x.delta, x.change) for x in layers
                 if (x.model, x.quantity, x.metric) == (item.model, item.quantity, item.metric)]
        summary = changes.total_change(item.delta, parts)
        if item.delta:
            item.text += f" ({changes.signed(item.delta)})"
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

    def frame(self) -> pd.DataFrame:
        """One row per difference, and one per tool version without any; `.attrs["report"]` is this report."""
        rows = []
        for o in self.outcomes:
            base = {"tool": o.tool, "version": o.version, "state": o.state, "golden": str(o.path),
                    "against": o.against}
            if not o.changes:
                rows.append({**base, "model": "", "layer": "", "quantity": "", "metric": "", "delta": None,
                             "change": "", "text": o.lines()[0].strip()})
            for c in o.changes:
                rows.append({**base, "model": c.model, "layer": c.layer, "quantity": c.quantity, "metric": c.metric,
                             "delta": c.delta, "change": c.change, "text": c.text})
        frame = pd.DataFrame(rows, columns=["tool", "version", "state", "golden", "against", "model", "layer",
                                            "quantity", "metric", "delta", "change", "text"])
        frame.attrs["report"] = self
        return frame

    def short_text(self, shown: int = 6) -> str:
        """The failure in a few lines: per model, how the network changed (layer by layer, with the tool
        numbers that moved with it under the same convention), each tool's totals golden -> now, then the
        changes of convention and anything else, grouped, `shown` lines per group at most."""
        failed = [o for o in self.outcomes if o.failed]
        moved = [(o, c) for o in failed for c in o.changes]
        models = list(dict.fromkeys(c.model for _, c in moved))
        tools = list(dict.fromkeys(o.tool for o in failed))
        if not moved:  # the first run: nothing to compare with yet
            return "\n".join([f"no golden file for {o.tool} {o.version} ({o.path})" for o in failed]
                             + [f"create it and review it: {self.hint or UPDATE_COMMAND}"])
        lines = [f"{', '.join(models)}: {len(moved)} numbers of {len(tools)} tool(s) differ from their goldens",
                 f"  goldens: {self.directory}"]

        def capped(title: str, items: list[str]) -> None:
            if items:
                lines.append(f"  {title}:")
                lines.extend(line for item in items[:shown] for line in wrap(item, "    ", width=110))
                if len(items) > shown:
                    lines.append(f"    ... {len(items) - shown} more")

        def where(model: str, layer: str) -> str:
            return f"layer {layer}" if len(models) == 1 else f"{model} layer {layer}"
        for o in failed:
            if o.state == "missing" and not o.changes:
                lines.append(f"  no golden for {o.tool} {o.version} ({o.path})")
            elif o.state == "missing":
                lines.append(f"  no golden for {o.tool} {o.version}: compared with {o.tool} {o.against}'s")
        network: dict[tuple, list[str]] = {}  # (model, layer, how it changed) -> "tool metric" moved with it
        totals: dict[tuple, list[str]] = {}  # (model, tool) -> "metric was -> now"
        other: dict[tuple, list[str]] = {}  # (tool, metric, change) -> layers
        for o, c in moved:
            if c.layer == TOTAL:
                delta = f" ({changes.signed(c.delta)})" if c.delta else ""
                totals.setdefault((c.model, o.tool), []).append(f"{c.metric} {c.was} -> {c.now}{delta}")
            elif c.same_convention:
                network.setdefault((c.model, c.layer, c.network), []).append(f"{o.tool} {c.metric}")
            else:
                other.setdefault((c.model, o.tool, c.metric, c.change), []).append(
                    f"layer {c.layer}: {c.was} -> {c.now}")
        capped("the network changed, the tools count it the same way",
               [f"{where(model, layer)}: {how}; moved: {_some(tools_moved, 6)}"
                for (model, layer, how), tools_moved in network.items()])
        capped("totals (golden -> now)", [f"{tool}{'' if len(models) == 1 else ' on ' + model}: {'; '.join(parts)}"
                                          for (model, tool), parts in totals.items()])
        capped("changes of convention, and the rest",
               [f"{tool} {metric}{'' if len(models) == 1 else ' on ' + model}: {change}; {_some(layers, 3)}"
                for (model, tool, metric, change), layers in other.items()])
        lines.append(f"every row: {VERBOSE_ENV}=1, or the exception's .report.text()")
        lines.append("if the new numbers are right, regenerate the goldens and review the diff:")
        lines.append(f"  {self.hint or UPDATE_COMMAND}")
        return "\n".join(lines)

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
    then = {model: read_layers(directory, model) for model in irs}
    outcomes = []
    for (tool, version), group in records.groupby(["tool", "tool_version"], sort=False):
        path = golden_path(directory, tool, version)
        current = snapshot(group)
        models = set(current["model"])
        existing = read(path) if path.exists() else None
        if update:
            changes_ = compare(existing[existing["model"].isin(models)], current, tool, version, version, irs,
                               then) if existing is not None else []
            directory.mkdir(parents=True, exist_ok=True)
            try:
                write_atomic(path, to_text(merge(existing, current)))  # mode follows the umask
            except OSError as exc:
                raise UserError(f"{path}: cannot write the golden ({exc.strerror or exc})") from None
            state = "created" if existing is None else ("updated" if changes_ else "unchanged")
            outcomes.append(Outcome(tool, version, path, state, len(current), changes_))
        elif existing is not None:
            changes_ = compare(existing[existing["model"].isin(models)], current, tool, version, version, irs, then)
            outcomes.append(Outcome(tool, version, path, "differs" if changes_ else "match", len(current), changes_))
        else:
            others = {v: p for v, p in goldens_of(directory, tool).items() if v != version}
            changes_, against = [], ""
            if others:
                against = newest(list(others))
                old = read(others[against])
                changes_ = compare(old[old["model"].isin(models)], current, tool, against, version, irs, then)
            outcomes.append(Outcome(tool, version, path, "missing", len(current), changes_, against))
    if update:
        for model, ir in irs.items():
            if ir is not None:
                write_atomic(layers_path(directory, model), layers_text(changes.ir_layer_terms(ir)))
    return outcomes


def check(tools: Optional[Sequence[str]] = None, models: "str | Sequence[str] | None" = None,
          directory: "str | Path | None" = None, update: bool = False, timeout: float = 120.0,
          progress=None, specs: Sequence = (), fresh: bool = False) -> Report:
    """Run the installed tools (or `tools`) on the reference suite (or `models`, or `specs`) and compare every
    number with the goldens; `update=True` rewrites them instead. Records come through the result cache
    (reconcile/cache.py) unless `fresh`."""
    from .api import execute, plan

    directory = golden_dir(directory)
    if update:  # an unwritable golden folder is said before the run, not after it
        from .api import prepare_out_dir

        prepare_out_dir(directory, option="--golden-dir")
    elif directory.exists() and not directory.is_dir():
        raise UserError(f"--golden-dir {directory}: not a directory")
    chosen, notes = available_tools(tools)
    if not chosen:
        return Report(directory, [], notes + ["no tool to check"])
    jobs = plan(models, chosen, specs)
    records = execute(jobs, timeout, progress, fresh)  # each model's IR traced in a job process (or cached)
    return Report(directory, compare_all(records, directory, update, dict(records.attrs["irs"])), notes)


def assert_counts(module, input_shape: Optional[Sequence[int]] = None, tools: Sequence[str] = ("thop",),
                  golden: "str | Path" = "tests/golden_counts", name: Optional[str] = None,
                  update: Optional[bool] = None) -> Report:
    """Pin your own nn.Module's (or any model spec's, e.g. "hf:gpt2?n_layer=2") counts in your test suite:

        from reconcile.golden import assert_counts
        def test_counts():
            assert_counts(MyNet(), (1, 3, 224, 224), tools=("thop", "torchstat"), golden="tests/golden_counts")

    The first run fails and says how to create the golden (RECONCILE_UPDATE_GOLDEN=1 pytest ...); afterwards a
    changed number fails with what changed, layer by layer, in convention terms."""
    from .api import register_module

    if update is None:
        update = os.environ.get(UPDATE_ENV, "") not in ("", "0")
    if isinstance(module, str):  # a model spec (README "Model specs"): "hf:gpt2?n_layer=2", "preset:bert-base"
        from .models import resolve

        spec = resolve(module, input_shape=",".join(map(str, input_shape)) if input_shape else None)
    else:
        if input_shape is None:
            raise UserError("assert_counts: an nn.Module needs input_shape, e.g. (1, 3, 224, 224)")
        spec = register_module(module, input_shape, name or type(module).__name__.lower())
    report = check(tools, [], golden, update, specs=[spec])
    report.hint = f"{UPDATE_ENV}=1 pytest <this test>"
    if report.failed:
        __tracebackhide__ = True  # pytest shows the caller's line and the message, not this function's source
        raise CountsChanged(report)
    return report


class CountsChanged(AssertionError):
    """assert_counts' failure: the short diff as its message (every row with RECONCILE_GOLDEN_VERBOSE=1), the
    whole comparison as `.report`."""

    def __init__(self, report: Report):
        verbose = os.environ.get(VERBOSE_ENV, "") not in ("", "0")
        super().__init__(report.text() if verbose else report.short_text())
        self.report = report
