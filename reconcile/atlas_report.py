"""`reconcile atlas DIR`: the discrepancy atlas rendered from a sweep store (reconcile/store.py) into
reports/atlas/: atlas.md (the summary, < MAX_MD_BYTES), atlas.html (the same, every table sortable by a click on
its header and filterable by a text box, self-contained) and atlas.csv (one row per (model, tool, release,
metric) total).

What a row says:
  - ratio: the tool's total over the reference (the document's formulas, tool `document`): its multiply-accumulates
    (`macc`) for a compute metric, its parameters for a params metric;
  - counts: what the tool counts, per layer kind, as decompositions in the document's basis terms with the
    catalogue entry of that release (reconcile/changes.py `reading`, the wording the release matrix and the golden
    snapshots share), and `source`: the catalogue entries' citations (tool file and function), or `search` where no
    entry holds and the diff engine's search found the fit;
  - zero_layers: layers with multiply-accumulates (their MACC term > 0) that the tool counted as 0 or has no rule
    for (a silent zero in its total);
  - a job that crashed, timed out or could not install is a row with its status and message.
A tool's releases are read in the order released (reconcile/releases.py); consecutive releases whose totals are
the same on every model (and whose jobs fail on the same models) form a run, shown once. From the last release of
a run to the first of the next, every (model, metric) total that changed is listed with the change in the release
matrix's words (reconcile/drift.py `drift_rows`), and every model whose job starts or stops failing.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path
import pandas as pd

from . import atlas
from .records import COMPUTE, MODEL_LEVEL, OK, PARAMS, TOTAL, UNSUPPORTED
from .spec import REGISTRY_OF_PREFIX
from .render import Heading, Para, Table, render_html, render_md

MAX_MD_BYTES = 150_000
MAX_KINDS = 5  # layer kinds named in a `counts` cell
REFERENCE_METRIC = {COMPUTE: "macc", PARAMS: "params"}
ATLAS_COLUMNS = ["family", "model", "tool", "release", "releases", "metric", "quantity", "value", "reference", "ratio",
                 "verdict", "counts", "source", "zero_layers", "status", "message"]
EXACT_WITHIN = 0.005  # a ratio this close to 1 (or 2) reads as the reference's count (or twice it)
# full-atlas arithmetic: transformers 5.24.0 has 622 model types with a base-model class (reconcile sweep hf)
FULL_MODELS = 622
WORKER_COUNTS = (2, 16, 64, 256)


def _number(text: str):
    if text in ("", None):
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)


def short(model: str) -> str:
    """A model as the atlas names it: an hf: spec without its small-configuration query (the family says it)."""
    return model.split("?", 1)[0] + (" (small)" if "?" in model else "")


def load(store_dir: "str | Path") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(records, jobs) of the store, each record's value exact (from its text), messages without this machine's
    tool-install folder (reconcile.drift.cache_root)."""
    from .drift import cache_root

    records = atlas.query(store_dir, "SELECT * EXCLUDE (value, engine, host, cpu_s, wall_s) FROM records "
                                     "ORDER BY job_key, seq")
    jobs = atlas.query(store_dir, "SELECT * FROM jobs ORDER BY job_key")
    return normalise(records, str(cache_root())), jobs


# an object's address in an exception's text ("<method-wrapper ... at 0x7fba2411d300>"): differs run to run
_ADDRESS = re.compile(r"0x[0-9a-f]{6,}")


def normalise(records: pd.DataFrame, tool_cache: str = "") -> pd.DataFrame:
    """The store's records as the atlas reads them: each value exact (from its text), messages without this
    machine's tool-install folder, every row named by the release its job asked for."""
    records = records.copy()
    records["message"] = [None if not isinstance(m, str) else
                          _ADDRESS.sub("0x...", m.replace(tool_cache, "(tool cache)") if tool_cache else m)
                          for m in records["message"]]
    records["value"] = pd.Series([_number(None if t != t else str(t)) for t in records["value_text"]],
                                 dtype=object, index=records.index)
    records["batch"] = pd.Series([None if pd.isna(b) else int(b) for b in records["batch"]], dtype=object,
                                 index=records.index)
    records["tool_version"] = records["release"]  # a matrix job's rows are named by the release it asked for
    return records


def _irs(records: pd.DataFrame) -> dict:
    """model -> its layer IR, from the cache the sweep's jobs kept them in (reading it runs no model code); None
    for a model whose sources changed or whose IR is not kept there."""
    from . import cache, kept_specs, models
    from .errors import UserError

    names = list(dict.fromkeys(records["model"]))
    try:  # the sweep resolved them: from the spec cache, the rest in one job (not a job each)
        resolved = atlas.resolve_kept([n for n in names if kept_specs.is_kept(n)])
    except UserError:
        resolved = {}  # one no longer resolves: each on its own (models.specs_from_records says which)
    specs, _ = models.specs_from_records(records, resolved)
    out = {}
    for name in dict.fromkeys(records["model"]):
        spec = specs.get(name)
        framework = models.canonical_framework(spec) if spec else None
        out[name] = cache.stored_ir(spec, framework) if framework else None
    return out


def _references(records: pd.DataFrame) -> dict[tuple[str, str], object]:
    ref = records[(records["tool"] == atlas.REFERENCE_TOOL) & (records["layer"] == TOTAL) & (records["status"] == OK)]
    return {(r.model, r.metric): r.value for r in ref.itertuples(index=False)}


def _counts(rows: pd.DataFrame, layers: dict) -> tuple[str, str, int]:
    """(what the tool counts per layer kind, the sources, layers with products counted as 0) of one job's
    per-layer rows of one metric."""
    from .changes import reading

    by_kind: dict[str, Counter] = defaultdict(Counter)
    sources: Counter = Counter()
    zeros = 0
    for rec in rows.itertuples(index=False):
        terms = layers.get(rec.layer)
        if terms is None:
            continue
        macc = terms.values.get("MACC", 0)
        if rec.status == UNSUPPORTED or (rec.status == OK and rec.value == 0):
            zeros += bool(macc)
        if rec.status not in (OK, UNSUPPORTED):
            continue
        r = reading(rec, layers)
        text = r.text or ("0" if r.value == 0 else "")
        if r.residual:
            text = f"{text} + unexplained" if text else "unexplained"
        by_kind[terms.kind][text] += 1
        if r.source:
            sources[r.source] += 1
    cells = []
    for kind, texts in sorted(by_kind.items(), key=lambda kv: -sum(kv[1].values()))[:MAX_KINDS]:
        cells.append(f"{kind} " + " / ".join(t for t, _ in texts.most_common(2)))
    more = len(by_kind) - MAX_KINDS
    return "; ".join(cells) + (f"; +{more} kinds" if more > 0 else ""), \
        ", ".join(s for s, _ in sources.most_common(3)), zeros


def verdict(ratio, status: str, zeros: int = 0) -> str:
    """The row in a few words: how the total stands to the reference (or twice it, a FLOPs count)."""
    if status != OK:
        return f"did not count ({status})"
    if ratio is None:
        return "no reference"
    if ratio == 0:
        return "0: counts nothing here"
    base, words = (2, "twice the reference") if ratio >= 1.5 else (1, "the reference")
    off = ratio / base - 1
    text = words if abs(off) <= EXACT_WITHIN else f"{abs(off):.1%} {'below' if off < 0 else 'above'} {words}"
    return text + (f"; {zeros} layer(s) at 0" if zeros else "")


def atlas_rows(records: pd.DataFrame, irs: dict, runs: "dict[str, list[list[str]]] | None" = None) -> pd.DataFrame:
    """One row per (model, tool, run of releases with identical numbers, metric), read at the run's last
    release (`releases`: the run)."""
    from .changes import ir_layer_terms

    refs = _references(records)
    layers_of = {model: ir_layer_terms(ir) for model, ir in irs.items()}
    runs = runs if runs is not None else tool_runs(records)
    run_of = {(tool, run[-1]): span(run) for tool, tool_run in runs.items() for run in tool_run}
    shown = records[[(t, r) in run_of for t, r in zip(records["tool"], records["release"])]]
    rows = []
    for (model, tool, release), job in shown.groupby(["model", "tool", "release"], sort=False):
        failed = job[(job["layer"] == MODEL_LEVEL) & (job["status"] != OK)]
        totals = job[(job["layer"] == TOTAL) & job["quantity"].isin(list(REFERENCE_METRIC))]
        base = {"family": atlas.family(model), "model": short(model), "tool": tool, "release": release,
                "releases": run_of[(tool, release)]}
        if len(failed) and not len(totals[totals["status"] == OK]):
            rec = failed.iloc[0]
            rows.append({**base, "metric": "", "quantity": "", "verdict": verdict(None, rec.status),
                         "status": rec.status, "message": rec.message[:300]})
            continue
        for rec in totals.itertuples(index=False):
            ref = refs.get((model, REFERENCE_METRIC[rec.quantity]))
            per_layer = job[(job["metric"] == rec.metric) & ~job["layer"].isin([TOTAL, MODEL_LEVEL])]
            counts, source, zeros = _counts(per_layer, layers_of.get(model, {})) if tool != atlas.REFERENCE_TOOL \
                else ("the reference (docs/document.md)", "conventions/formulas.py", 0)
            ratio = rec.value / ref if ref and rec.value is not None else None
            rows.append({**base, "metric": rec.metric, "quantity": rec.quantity, "value": rec.value,
                         "reference": ref, "ratio": None if ratio is None else float(f"{ratio:.4g}"),
                         "verdict": verdict(ratio, rec.status, zeros),
                         "counts": counts, "source": source, "zero_layers": zeros, "status": rec.status,
                         "message": (rec.message or "")[:200]})
    frame = pd.DataFrame(rows, columns=ATLAS_COLUMNS)
    return frame.sort_values(["family", "model", "tool", "release", "metric"], kind="stable").reset_index(drop=True)


def release_order(releases, dist: "str | None", listing=None) -> list[str]:
    """The releases in the order released (reconcile/releases.json); a release the listing lacks (a pin such as
    2.13.0+cpu, the document's seed) after them, in PEP 440 order."""
    from packaging.version import InvalidVersion, Version

    from . import releases as registry

    rank = registry.release_rank(listing or registry.load(), dist)

    def key(v):
        if v in rank:
            return (0, rank[v], Version("0"))
        try:
            return (1, 0, Version(v))
        except InvalidVersion:
            return (2, 0, Version("0"))
    return sorted(dict.fromkeys(releases), key=key)


def _release_order(records: pd.DataFrame, tool: str) -> list[str]:
    return release_order(records.loc[records["tool"] == tool, "release"], atlas.distribution(tool))


def _job_status(records: pd.DataFrame) -> dict[tuple[str, str], tuple[str, str]]:
    """(model, release) -> (ok or the job's error status, its message)."""
    out = {}
    for (model, release), job in records.groupby(["model", "release"], sort=False):
        failed = job[(job["layer"] == MODEL_LEVEL) & (job["status"] != OK)]
        out[(model, release)] = (failed["status"].iloc[0], failed["message"].iloc[0]) if len(failed) else (OK, "")
    return out


def _signature(records: pd.DataFrame) -> dict[str, frozenset]:
    """release -> what its numbers are: every job's status and every (model, metric) total it printed."""
    out: dict[str, set] = defaultdict(set)
    for rec in records.itertuples(index=False):
        if rec.layer == MODEL_LEVEL and rec.status != OK:
            out[rec.release].add((rec.model, "", rec.status, None))
        elif rec.layer == TOTAL and rec.quantity in REFERENCE_METRIC:
            out[rec.release].add((rec.model, rec.metric, rec.status, rec.value))
        else:
            out[rec.release]  # a release with rows but no total still has a (empty) signature
    return {release: frozenset(sig) for release, sig in out.items()}


def release_runs(signatures: dict[str, frozenset], releases: list[str]) -> list[list[str]]:
    """Consecutive releases (in the order given) with identical numbers, grouped: [[r1, r2], [r3], ...]."""
    runs: list[list[str]] = []
    for release in releases:
        if runs and signatures.get(release) == signatures.get(runs[-1][-1]):
            runs[-1].append(release)
        else:
            runs.append([release])
    return runs


def _compared(tool_records: pd.DataFrame) -> pd.DataFrame:
    """One tool's records on the models it ran at more than one release (all of them if none)."""
    per_model = tool_records.groupby("model")["release"].nunique()
    several = list(per_model[per_model > 1].index)
    return tool_records[tool_records["model"].isin(several)] if several else tool_records


def tool_runs(records: pd.DataFrame) -> dict[str, list[list[str]]]:
    """tool -> its runs of releases with identical numbers, in the order released, compared on the models the
    tool ran at more than one release (a model swept at its pin only, the matrix's breadth, says nothing about
    what changed between releases)."""
    out = {}
    for tool in dict.fromkeys(records["tool"]):
        out[tool] = release_runs(_signature(_compared(records[records["tool"] == tool])),
                                 _release_order(records, tool))
    return out


def span(run: list[str]) -> str:
    """A run of releases as text: "0.1.0" or "0.0.23.post1906241153 .. 0.0.30.post1908302010 (12)"."""
    return run[0] if len(run) == 1 else f"{run[0]} .. {run[-1]} ({len(run)})"


def release_changes(records: pd.DataFrame, irs: dict, runs: "dict[str, list[list[str]]] | None" = None) \
        -> pd.DataFrame:
    """One row per (tool, model, metric) total that changed from a release to the next one swept (the last of a
    run of identical numbers to the first of the next), in drift.py's words; one row per model whose job starts
    or stops failing there."""
    from .drift import drift_rows

    runs = runs if runs is not None else tool_runs(records)
    out = []
    for tool in dict.fromkeys(records["tool"]):
        tool_run = runs.get(tool, [])
        if len(tool_run) < 2:
            continue
        pairs = [(a[-1], b[0]) for a, b in zip(tool_run, tool_run[1:])]
        boundary = list(dict.fromkeys(v for pair in pairs for v in pair))
        df = _compared(records[records["tool"] == tool])
        df = df[df["release"].isin(boundary)].reset_index(drop=True)
        table = drift_rows(df, boundary, irs)
        totals = table[(table["layer"] == TOTAL) & (table["quantity"].isin(list(REFERENCE_METRIC)))]
        for r in totals.itertuples(index=False):
            if r.change in ("unchanged", "unchanged status") or (r.delta == 0 and r.from_status == r.to_status):
                continue
            if r.from_status not in (OK, UNSUPPORTED) or r.to_status not in (OK, UNSUPPORTED):
                continue  # a job that failed: said once, as a change of status, below
            out.append({"tool": tool, "from_release": r.from_version, "to_release": r.to_version,
                        "model": short(r.model),
                        "metric": r.metric, "from_value": r.from_value, "to_value": r.to_value, "delta": r.delta,
                        "what": "; ".join(dict.fromkeys(change_words(r.change or ""))),
                        "why": (r.change or f"{r.from_status} -> {r.to_status}")[:400]})
        status = _job_status(df)
        for a, b in pairs:
            for model in dict.fromkeys(df["model"]):
                was, now = status.get((model, a)), status.get((model, b))
                if was and now and was[0] != now[0]:
                    reason = (now if now[0] != OK else was)[1]
                    why = f"now fails: {reason}" if now[0] != OK else f"runs again (failed before: {reason})"
                    out.append({"tool": tool, "from_release": a, "to_release": b, "model": short(model), "metric": "",
                                "from_value": None, "to_value": None, "delta": None,
                                "what": why[:140], "why": why[:300]})
    columns = ["tool", "from_release", "to_release", "model", "metric", "from_value", "to_value", "delta", "what",
               "why"]
    return pd.DataFrame(out, columns=columns)


def _range(values) -> str:
    values = [v for v in values if v is not None and v == v]
    if not values:
        return ""
    lo, hi = min(values), max(values)
    return f"{lo:.3g}" if lo == hi else f"{lo:.3g}-{hi:.3g}"


def family_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per architecture family x tool metric, at each tool's newest swept release: the ratio range, what it
    counts (the most common reading), silent zeros and crashes."""
    newest = {tool: _newest(rows, tool) for tool in dict.fromkeys(rows["tool"])}
    latest = rows[[newest[t] == r for t, r in zip(rows["tool"], rows["release"])]]
    out = []
    for (family, tool), group in latest.groupby(["family", "tool"], sort=True):
        crashed = group[group["status"] != OK]
        for metric, g in group[group["status"] == OK].groupby("metric", sort=True):
            out.append({"family": family, "tool": tool, "release": newest[tool], "metric": metric,
                        "models": g["model"].nunique(), "ratio": _range(list(g["ratio"])),
                        "verdict": Counter(g["verdict"]).most_common(1)[0][0],
                        "counts": Counter(g["counts"]).most_common(1)[0][0],
                        "zero_layers": int(g["zero_layers"].fillna(0).sum()), "crashed": len(crashed)})
        if group[group["status"] == OK].empty:
            out.append({"family": family, "tool": tool, "release": newest[tool], "metric": "", "models": 0,
                        "ratio": "", "verdict": Counter(crashed["verdict"]).most_common(1)[0][0], "counts": "",
                        "zero_layers": 0,
                        "crashed": len(crashed)})
    return pd.DataFrame(out)


def release_models(records: pd.DataFrame) -> set[str]:
    """The models some tool ran at more than one release on, as the atlas's rows name them (short): the release
    history. The others are its breadth (every architecture at the venv's pinned counters), read in the matrix and
    the counter summary."""
    releases = records.groupby(["model", "tool"])["release"].nunique()
    return {short(model) for (model, _), count in releases.items() if count > 1}


def history_rows(rows: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """The atlas rows of the release history (all of them when no model has several releases of a tool)."""
    history = release_models(records)
    return rows[rows["model"].isin(history)] if history else rows


def _at_newest(rows: pd.DataFrame) -> pd.DataFrame:
    newest = {tool: _newest(rows, tool) for tool in dict.fromkeys(rows["tool"])}
    return rows[[newest[t] == r for t, r in zip(rows["tool"], rows["release"])]]


def _metric_columns(latest: pd.DataFrame) -> list[tuple[str, str]]:
    counted = latest[(latest["status"] == OK) & (latest["tool"] != atlas.REFERENCE_TOOL)]
    return sorted(set(zip(counted["tool"], counted["metric"])), key=lambda tm: (tm[0], tm[1].lower()))


def _ratio_cell(row) -> str:
    if row.status != OK:
        return str(row.status)
    return "" if row.ratio is None or row.ratio != row.ratio else f"{row.ratio:.4g}"


def matrix_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per model, one column per tool metric at the tool's newest release swept: the ratio of its total
    to the reference (1: the reference's count, 2: twice it, 0: nothing counted), or the status of a job that
    did not count (error, timeout, ...); blank where the tool prints no such metric. The reference's own
    multiply-accumulates and parameters lead the row."""
    latest = _at_newest(rows)
    columns = _metric_columns(latest)
    out = []
    for model, group in latest.groupby("model", sort=False):
        ref = group[(group["tool"] == atlas.REFERENCE_TOOL) & (group["status"] == OK)]
        refs = dict(zip(ref["quantity"], ref["value"]))
        row = {"family": group["family"].iloc[0], "model": model,
               "reference_macc": _exact(refs.get(COMPUTE)), "reference_params": _exact(refs.get(PARAMS))}
        for tool, tool_rows in group.groupby("tool", sort=False):
            failed = tool_rows[tool_rows["metric"] == ""]
            for tool_name, metric in columns:
                if tool_name != tool:
                    continue
                if len(failed):
                    row[f"{tool} {metric}"] = str(failed["status"].iloc[0])
            for r in tool_rows[tool_rows["metric"] != ""].itertuples(index=False):
                if (tool, r.metric) in columns:
                    row[f"{tool} {r.metric}"] = _ratio_cell(r)
        out.append(row)
    names = ["family", "model", "reference_macc", "reference_params"] + [f"{t} {m}" for t, m in columns]
    frame = pd.DataFrame(out, columns=names).fillna("")
    return frame.sort_values(["family", "model"], kind="stable").reset_index(drop=True)


def counter_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per tool metric at the tool's newest release, over every model: how its totals stand to the reference
    (at it or twice it within EXACT_WITHIN, below, above, 0), models with layers counted as 0, the median ratio,
    crashes, and the most common reading of what it counts."""
    latest = _at_newest(rows)
    latest = latest[latest["tool"] != atlas.REFERENCE_TOOL]
    crashed = latest[latest["metric"] == ""].groupby("tool")["model"].nunique().to_dict()
    out = []
    for (tool, metric), g in latest[latest["metric"] != ""].groupby(["tool", "metric"], sort=True):
        ok = g[g["status"] == OK]
        ratios = [r for r in ok["ratio"] if r is not None and r == r]
        words = Counter(_verdict_class(r) for r in ratios)
        out.append({"tool": tool, "release": g["release"].iloc[0], "metric": metric, "models": len(ok),
                    "at_reference": words["at"], "twice_reference": words["twice"], "below": words["below"],
                    "above": words["above"], "zero_total": words["zero"],
                    "models_with_zero_layers": int((ok["zero_layers"].fillna(0) > 0).sum()),
                    "median_ratio": f"{pd.Series(ratios).median():.4g}" if ratios else "",
                    "ratio_range": _range(ratios), "crashed": crashed.get(tool, 0) + int((g["status"] != OK).sum()),
                    "counts_most_often": Counter(ok["counts"]).most_common(1)[0][0] if len(ok) else ""})
    return pd.DataFrame(out)


def _verdict_class(ratio: float) -> str:
    """verdict()'s reading of a ratio in one word: at the reference, twice it, below, above, or zero."""
    if ratio == 0:
        return "zero"
    base = 2 if ratio >= 1.5 else 1
    off = ratio / base - 1
    if abs(off) <= EXACT_WITHIN:
        return "at" if base == 1 else "twice"
    return "below" if off < 0 else "above"


def _newest(rows: pd.DataFrame, tool: str) -> str:
    return _release_order(rows, tool)[-1]


INSTALL_FAILED = ("pip could not install ", "pip cannot install ")


def _install_reason(message: str) -> str:
    """pip's reason without the "pip could not install DIST==VERSION: " that names the release."""
    return message.split(": ", 1)[1] if ": " in message else message


def install_table(records: pd.DataFrame) -> pd.DataFrame:
    """One row per (tool, release) that pip could not install, in the order released, with pip's reason."""
    from . import releases as registry

    listing = registry.load()
    failed = records[(records["layer"] == MODEL_LEVEL) & (records["status"] != OK)
                     & records["message"].fillna("").str.startswith(INSTALL_FAILED)]
    out = []
    for tool in dict.fromkeys(failed["tool"]):
        dist = atlas.distribution(tool)
        mine = failed[failed["tool"] == tool]
        reason = dict(zip(mine["release"], mine["message"]))
        for release in release_order(reason, dist, listing):
            listed = listing.find(dist, release) if dist else None
            out.append({"tool": tool, "release": release, "uploaded": listed.uploaded[:10] if listed else "",
                        "why": _install_reason(reason[release])[:220]})
    return pd.DataFrame(out, columns=["tool", "release", "uploaded", "why"])


def grouped_installs(table: pd.DataFrame) -> pd.DataFrame:
    """install_table with consecutive releases of a tool that failed for the same reason on one row."""
    out = []
    for row in table.itertuples(index=False):
        if out and out[-1]["tool"] == row.tool and out[-1]["why"] == row.why:
            out[-1]["run"].append(row.release)
        else:
            out.append({"tool": row.tool, "run": [row.release], "why": row.why})
    return pd.DataFrame([{"tool": o["tool"], "releases": span(o["run"]), "why": o["why"]} for o in out],
                        columns=["tool", "releases", "why"])


def crash_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Jobs that ran and failed (not install failures: install_table), per tool, run of releases and message."""
    failed = rows[(rows["status"] != OK) & ~rows["message"].fillna("").str.startswith(INSTALL_FAILED)]
    failed = failed.assign(message=[_SPEC_IN_TEXT.sub("MODEL", m) for m in failed["message"].fillna("")])
    out = []
    for (tool, releases, message), g in failed.groupby(["tool", "releases", "message"], sort=False):
        names = list(dict.fromkeys(g["model"]))
        out.append({"tool": tool, "releases": releases, "models": len(names), "status": g["status"].iloc[0],
                    "message": message[:220],
                    "on": ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")})
    frame = pd.DataFrame(out, columns=["tool", "releases", "models", "status", "message", "on"])
    return frame.sort_values(["models", "tool"], ascending=[False, True], kind="stable").reset_index(drop=True)


# a model spec named inside a crash message (the tools' adapters name the model they could not feed)
_SPEC_IN_TEXT = re.compile(r"\b(?:" + "|".join(re.escape(p[:-1]) for p in (*REGISTRY_OF_PREFIX, "module:"))
                           + r"):[^\s()]+")
MD_CRASH_ROWS = 40  # the markdown's crash table: the most common; atlas.html has every one


def change_words(why: str) -> list[str]:
    """The convention changes a total's `why` names, without their per-layer amounts."""
    out = []
    for part in why.split("; "):
        if re.match(r"^[-+][\d,.]+ not attributed to any layer", part):
            out.append("a change not attributed to any layer")
        else:
            head = re.split(r": [-+][\d,.]", part)[0]
            if head and not re.match(r"^[-+]?[\d,.]+ on ", head):
                out.append(head)
    return out


def runs_table(runs: dict[str, list[list[str]]], changes: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """Per tool, its runs of releases with identical numbers, in the order released: when they came out, how
    many models ran, and what changed at the run's first release (the summary of `changes`)."""
    from . import releases as registry

    listing = registry.load()
    ran = records[(records["layer"] == TOTAL) & (records["status"] == OK)].groupby(["tool", "release"])["model"] \
        .nunique().to_dict()
    models = records.groupby("tool")["model"].nunique().to_dict()
    out = []
    for tool, tool_run in runs.items():
        if sum(len(run) for run in tool_run) < 2:
            continue  # one release swept: the family table says what it counts
        dist = atlas.distribution(tool)
        for i, run in enumerate(tool_run):
            dates = [r.uploaded[:10] for r in (listing.find(dist, v) for v in (run[0], run[-1]) if dist) if r]
            here = changes[(changes["tool"] == tool) & (changes["to_release"] == run[0])]
            words: Counter = Counter()
            for model, g in here.groupby("model", sort=False):
                words.update(set(w for what in g["what"] for w in what.split("; ") if w))
            what = "first release swept" if i == 0 else (
                f"{here['model'].nunique()} model(s): " + "; ".join(f"{w} ({n}x)" if n > 1 else w
                                                                  for w, n in words.most_common(4))
                if len(here) else "(a change of status only)")
            out.append({"tool": tool, "releases": span(run),
                        "released": " .. ".join(dict.fromkeys(dates)), "models_counted":
                        f"{ran.get((tool, run[-1]), 0)}/{models[tool]}", "changed_from_previous": what[:600]})
    return pd.DataFrame(out, columns=["tool", "releases", "released", "models_counted", "changed_from_previous"])


def cost_table(jobs: pd.DataFrame, jobs_per_model: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    ran = jobs[jobs["engine"].fillna("") != ""]
    per_tool = ran.groupby("tool").agg(jobs=("job_key", "count"), cpu_s_mean=("cpu_s", "mean"),
                                       cpu_s_max=("cpu_s", "max"), wall_s_mean=("wall_s", "mean")).reset_index()
    for col in ("cpu_s_mean", "cpu_s_max", "wall_s_mean"):
        per_tool[col] = [round(float(v), 3) for v in per_tool[col]]
    wall = float(ran["wall_s"].mean()) if len(ran) else 0.0
    cpu = float(ran["cpu_s"].mean()) if len(ran) else 0.0
    full_jobs = FULL_MODELS * jobs_per_model
    paper = pd.DataFrame([{"workers": n, "jobs": full_jobs, "hours_at_wall_s": round(full_jobs * wall / n / 3600, 2),
                           "hours_at_cpu_s": round(full_jobs * cpu / n / 3600, 2)} for n in WORKER_COUNTS])
    return per_tool, paper


def blocks(rows: pd.DataFrame, changes: pd.DataFrame, jobs: pd.DataFrame, store_name: str,
           runs: dict[str, list[list[str]]], records: pd.DataFrame) -> dict[str, list]:
    """The page's sections by name (render() puts the markdown summary and the HTML page together from them)."""
    models = list(dict.fromkeys(rows["model"]))
    tools = list(dict.fromkeys(rows["tool"]))
    history = release_models(records)
    per_run = history_rows(rows, records)  # the per-run tables read the release history
    pairs = sum(len(run) for tool_run in runs.values() for run in tool_run)
    shown_runs = sum(len(tool_run) for tool_run in runs.values())
    out: dict[str, list] = {}
    out["head"] = [
        Heading("The discrepancy atlas", 1),
        Para(f"{len(models)} models x {len(tools)} counters x their releases: {pairs} (tool, release) pairs, "
             f"{len(jobs)} jobs, from the sweep store `{store_name}` (`reconcile atlas sweep`; `reconcile atlas "
             "query \"SQL\"` over it). Consecutive releases of a tool whose totals are the same on every model "
             f"(and whose jobs fail on the same models) are one run, shown once ({shown_runs} runs): `releases` "
             "names the run, `release` the release read (its last). The ratio is the tool's total over the "
             "reference (the document's formulas): its multiply-accumulates for a compute metric, its parameters "
             "for a params metric. `counts`: what the tool counts per layer kind in the document's basis terms "
             "(MACC multiply-accumulates, BIAS bias adds, OUT output elements, ...) with the catalogue entry of "
             "that release; `zero_layers`: layers with multiply-accumulates the tool counted as 0 or has no rule "
             "for. Every run: atlas.csv and atlas.html (sortable, filterable).")]
    if history and len(history) < len(models):
        out["head"].append(Para(f"{len(history)} of the models are swept across releases (the release history: "
                                "the runs, changes and family tables, atlas.csv); all "
                                f"{len(models)} at each tool's newest release swept in the counter summary and the "
                                "matrix (atlas_matrix.csv, atlas.html)."))
    swept = [f"{tool} {sum(len(r) for r in runs[tool])}" + (f" in {len(runs[tool])} runs" if len(runs[tool]) > 1
                                                             else f" ({runs[tool][0][0]})") for tool in tools]
    from . import releases as registry

    out["head"].append(Para("Releases swept, in the order released (the package registry's listing read "
                            f"{registry.load().read_utc}, reconcile/releases.json): " + "; ".join(swept) + "."))
    out["summary"] = [Heading("Every counter over every model (newest release swept)", 2),
                      Para(f"Per tool metric, over the {len(models)} models: how many totals are the reference's "
                           "count (`at_reference`; a params metric, or multiply-accumulates), twice it (FLOPs as 2 "
                           f"per multiply-accumulate), within {EXACT_WITHIN:.1%}; below or above those; 0; models "
                           "with layers counted as 0 (silent zeros); models whose job crashed; and the reading "
                           "of what it counts on most models. Per model: the matrix (atlas_matrix.csv)."),
                      Table(counter_summary(rows), "counter summary")]
    out["matrix"] = [Heading("Every model x every counter: the ratio to the reference", 2),
                     Para("Each cell: the tool's total over the reference (multiply-accumulates for a compute "
                          "metric, parameters for a params metric; 1 the reference's count, 2 twice it, 0 nothing "
                          "counted), or the status of a job that did not count; blank: the tool prints no such "
                          "metric. The same as atlas_matrix.csv."),
                     Table(matrix_table(rows), "every model x every counter")]
    out["family"] = [Heading("Per architecture family and tool metric (newest release swept)", 2),
                     Table(family_table(per_run), "family x tool metric")]
    out["runs"] = [Heading("Every release whose numbers differ from the previous one, and why", 2),
                   Para("Per tool, its runs of releases with the same numbers, in the order released; "
                        "`changed_from_previous`: what changed at the run's first release against the last "
                        "release of the run before, per model in the release matrix's words (reconcile/changes.py;"
                        " `Nx`: on N models), the totals below."),
                   Table(runs_table(runs, changes, records), "release runs")]
    out["changes"] = [Heading("What changed between releases, per model", 2),
                      Table(changes, "release changes") if len(changes) else Para("Nothing changed.")]
    installs = install_table(records)
    out["installs"] = [Heading("Releases pip could not install", 2),
                       Table(grouped_installs(installs), "install failures") if len(installs) else Para("None.")]
    out["installs_every"] = [Heading("Releases pip could not install, one line each", 2),
                             Table(installs, "install failures, one line each") if len(installs)
                             else Para("None.")]
    crashes = crash_table(rows)
    out["crashes"] = [Heading("Crashes and jobs that did not run", 2),
                      Table(crashes, "crashes") if len(crashes) else Para("None.")]
    out["crashes_md"] = out["crashes"] if len(crashes) <= MD_CRASH_ROWS else [
        Heading("Crashes and jobs that did not run", 2),
        Para(f"The {MD_CRASH_ROWS} most common of {len(crashes)} (tool, releases, message) groups, "
             f"{int(crashes['models'].sum())} jobs (MODEL: the model the job ran on); every one in atlas.html."),
        Table(crashes.head(MD_CRASH_ROWS), "crashes")]
    per_tool, paper = cost_table(jobs, pairs)
    ran = jobs[jobs["engine"].fillna("") != ""]
    wall, cpu = float(ran["wall_s"].mean() or 0.0), float(ran["cpu_s"].mean() or 0.0)
    out["cost"] = [Heading("Cost: measured CPU seconds per job, and the full atlas on paper", 2),
                   Table(per_tool, "cost per tool"),
                   Para(f"The full atlas, every transformers model type with a base-model class ({FULL_MODELS}) x "
                        f"the {pairs} (tool, release) pairs here, on N workers: at the mean measured {wall:.2f} s "
                        "of wall time per job (fork, model build, the tool, the records; small configurations; "
                        "this sweep shared its 2 cores with other work), and at the mean "
                        f"{cpu:.2f} CPU seconds per job (a worker per idle core):"),
                   Table(paper, "full atlas on paper")]
    shown = _at_newest(per_run)
    out["totals"] = [Heading("Every total", 2),
                     Para("At each tool's newest release swept; every run: atlas.csv, and atlas.html's last "
                          "table."),
                     Table(shown.drop(columns=["message", "releases"]).reset_index(drop=True), "totals")]
    every = per_run.drop(columns=["source"]).assign(message=[m[:120] if isinstance(m, str) else m
                                                             for m in per_run["message"]])
    out["every"] = [Heading("Every run of releases", 2), Table(every, "every run")]
    return out


# The markdown summary: these sections, dropping the later optional ones (each named in a closing line) until
# it fits MAX_MD_BYTES; the HTML page has every section.
MD_SECTIONS = ("head", "summary", "runs", "family", "installs", "crashes_md", "cost", "changes", "totals")
MD_OPTIONAL = ("totals", "changes", "family")
HTML_SECTIONS = ("head", "summary", "runs", "family", "matrix", "changes", "installs_every", "crashes", "cost", "every")
LEFT_OUT = {"totals": "every total (atlas.csv)", "changes": "the per-model changes (atlas.html, atlas_changes.csv)",
            "family": "the family table (atlas.html)"}


def summary_md(sections: dict[str, list]) -> str:
    names = list(MD_SECTIONS)
    for drop in (None,) + MD_OPTIONAL:
        if drop:
            names.remove(drop)
        md = render_md([b for name in names for b in sections[name]])
        left = [LEFT_OUT[n] for n in MD_OPTIONAL if n not in names]
        if left:
            md += "\nLeft out of this page to keep it under 150 KB: " + "; ".join(left) + ".\n"
        if len(md.encode()) <= MAX_MD_BYTES:
            return md
    return md


# A table the reader sorts (click a header: ascending, again: descending) and filters (every word typed must
# occur in the row): self-contained, no library.
SCRIPT = """<script>
(function () {
  function cellValue(td) {
    var t = td.textContent.trim(), n = parseFloat(t.replace(/,/g, ''));
    return (t !== '' && /^-?[\\d,.]+(e[-+]?\\d+)?$/i.test(t)) ? n : t.toLowerCase();
  }
  [].slice.call(document.querySelectorAll('table')).forEach(function (table, index) {
    var body = table.tBodies[0];
    if (!body) return;
    var input = document.createElement('input');
    input.type = 'search';
    input.placeholder = 'filter rows (words)';
    input.className = 'atlas-filter';
    input.id = 'atlas-filter-' + index;
    input.addEventListener('input', function () {
      var words = input.value.toLowerCase().split(/\\s+/).filter(Boolean);
      [].slice.call(body.rows).forEach(function (row) {
        var text = row.textContent.toLowerCase();
        row.style.display = words.every(function (w) { return text.indexOf(w) >= 0; }) ? '' : 'none';
      });
    });
    table.parentNode.insertBefore(input, table);
    [].slice.call(table.tHead.rows[0].cells).forEach(function (th, column) {
      th.style.cursor = 'pointer';
      th.title = 'sort';
      th.addEventListener('click', function () {
        var descending = th.getAttribute('data-sort') === 'asc';
        [].slice.call(table.tHead.rows[0].cells).forEach(function (h) { h.removeAttribute('data-sort'); });
        th.setAttribute('data-sort', descending ? 'desc' : 'asc');
        var rows = [].slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = cellValue(a.cells[column]), y = cellValue(b.cells[column]);
          if (typeof x !== typeof y) { x = String(x); y = String(y); }
          var c = x < y ? -1 : x > y ? 1 : 0;
          return descending ? -c : c;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  });
})();
</script>"""


def render(store_dir: "str | Path", out_dir: "str | Path") -> dict[str, Path]:
    from .api import prepare_out_dir, write_set

    names = ["atlas.md", "atlas.html", "atlas.csv", "atlas_matrix.csv", "atlas_changes.csv"]
    out = prepare_out_dir(out_dir, names)
    records, jobs = load(store_dir)
    if records.empty:
        from .errors import UserError

        raise UserError(f"{store_dir}: the store holds no jobs yet (`reconcile atlas sweep --out {store_dir}`)")
    irs = _irs(records)
    runs = tool_runs(records)
    rows = atlas_rows(records, irs, runs)
    changes = release_changes(records, irs, runs)
    sections = blocks(rows, changes, jobs, Path(store_dir).name, runs, records)
    md = summary_md(sections)
    html = render_html([b for name in HTML_SECTIONS for b in sections[name]], "reconcile atlas") \
        .replace("</body>", SCRIPT + "</body>")
    return write_set(out, {"atlas.md": md, "atlas.html": html, "atlas.csv": _csv(history_rows(rows, records)),
                           "atlas_matrix.csv": matrix_table(rows).to_csv(index=False, lineterminator="\n"),
                           "atlas_changes.csv": _changes_csv(changes)})


def _changes_csv(changes: pd.DataFrame) -> str:
    frame = changes.copy()
    for column in ("from_value", "to_value", "delta"):  # exact: 2307720, not 2307720.0
        frame[column] = [_exact(v) for v in frame[column]]
    return frame.to_csv(index=False, lineterminator="\n")


def _exact(value) -> str:
    """2307720, not 2307720.0; blank for none."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _csv(rows: pd.DataFrame) -> str:
    frame = rows.copy()
    for column in ("value", "reference", "zero_layers"):
        frame[column] = [_exact(v) for v in frame[column]]
    return frame.to_csv(index=False, lineterminator="\n")

