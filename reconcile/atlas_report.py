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
Between consecutive releases of a tool (the order swept), every (model, metric) total that changed is listed with
the change in the release matrix's words (reconcile/drift.py `drift_rows`).
"""
from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
import pandas as pd

from . import atlas
from .records import COMPUTE, MODEL_LEVEL, OK, PARAMS, TOTAL, UNSUPPORTED
from .render import Heading, Para, Table, render_html, render_md

MAX_MD_BYTES = 150_000
MAX_KINDS = 5  # layer kinds named in a `counts` cell
REFERENCE_METRIC = {COMPUTE: "macc", PARAMS: "params"}
ATLAS_COLUMNS = ["family", "model", "tool", "release", "metric", "quantity", "value", "reference", "ratio",
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
    folder = str(cache_root())
    records["message"] = [m.replace(folder, "(tool cache)") if isinstance(m, str) else m for m in records["message"]]
    records["value"] = pd.Series([_number(t) for t in records["value_text"]], dtype=object, index=records.index)
    records["batch"] = pd.Series([None if pd.isna(b) else int(b) for b in records["batch"]], dtype=object,
                                 index=records.index)
    records["tool_version"] = records["release"]  # a matrix job's rows are named by the release it asked for
    jobs = atlas.query(store_dir, "SELECT * FROM jobs ORDER BY job_key")
    return records, jobs


def _irs(records: pd.DataFrame) -> dict:
    """model -> its layer IR, from the cache the sweep's jobs kept them in (reading it runs no model code); None
    for a model whose sources changed or whose IR is not kept there."""
    from . import cache, models

    specs, _ = models.specs_from_records(records)
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


def atlas_rows(records: pd.DataFrame, irs: dict) -> pd.DataFrame:
    from .changes import ir_layer_terms

    refs = _references(records)
    layers_of = {model: ir_layer_terms(ir) for model, ir in irs.items()}
    rows = []
    for (model, tool, release), job in records.groupby(["model", "tool", "release"], sort=False):
        failed = job[(job["layer"] == MODEL_LEVEL) & (job["status"] != OK)]
        totals = job[(job["layer"] == TOTAL) & job["quantity"].isin(list(REFERENCE_METRIC))]
        base = {"family": atlas.family(model), "model": short(model), "tool": tool, "release": release}
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


def _release_order(records: pd.DataFrame, tool: str) -> list[str]:
    from .drift import normal_version

    swept = atlas.RELEASES.get(tool, ())
    found = list(dict.fromkeys(records.loc[records["tool"] == tool, "release"]))
    from packaging.version import InvalidVersion, Version

    def key(v):
        try:
            return (0, Version(v))
        except InvalidVersion:
            return (1, Version("0"))
    ordered = [normal_version(v) for v in swept if normal_version(v) in found]
    return ordered + sorted((v for v in found if v not in ordered), key=key)


def _job_status(records: pd.DataFrame) -> dict[tuple[str, str], tuple[str, str]]:
    """(model, release) -> (ok or the job's error status, its message)."""
    out = {}
    for (model, release), job in records.groupby(["model", "release"], sort=False):
        failed = job[(job["layer"] == MODEL_LEVEL) & (job["status"] != OK)]
        out[(model, release)] = (failed["status"].iloc[0], failed["message"].iloc[0]) if len(failed) else (OK, "")
    return out


def release_changes(records: pd.DataFrame, irs: dict) -> pd.DataFrame:
    """One row per (tool, consecutive releases, model, metric) whose total changed, in drift.py's words."""
    from .drift import drift_rows

    out = []
    for tool in dict.fromkeys(records["tool"]):
        releases = _release_order(records, tool)
        if len(releases) < 2:
            continue
        df = records[records["tool"] == tool].reset_index(drop=True)
        table = drift_rows(df, releases, irs)
        totals = table[(table["layer"] == TOTAL) & (table["quantity"].isin(list(REFERENCE_METRIC)))]
        for r in totals.itertuples(index=False):
            if r.change in ("unchanged", "unchanged status") or (r.delta == 0 and r.from_status == r.to_status):
                continue
            if r.from_status not in (OK, UNSUPPORTED) or r.to_status not in (OK, UNSUPPORTED):
                continue  # a job that failed: said once, as a change of status, below
            out.append({"tool": tool, "from_release": r.from_version, "to_release": r.to_version,
                        "model": short(r.model),
                        "metric": r.metric, "from_value": r.from_value, "to_value": r.to_value, "delta": r.delta,
                        "why": (r.change or f"{r.from_status} -> {r.to_status}")[:400]})
        status = _job_status(df)
        for a, b in zip(releases, releases[1:]):
            for model in dict.fromkeys(df["model"]):
                was, now = status.get((model, a)), status.get((model, b))
                if was and now and was[0] != now[0]:
                    reason = (now if now[0] != OK else was)[1]
                    why = f"{'now fails' if now[0] != OK else 'runs again'}: {reason}"
                    out.append({"tool": tool, "from_release": a, "to_release": b, "model": short(model), "metric": "",
                                "from_value": None, "to_value": None, "delta": None, "why": why[:300]})
    columns = ["tool", "from_release", "to_release", "model", "metric", "from_value", "to_value", "delta", "why"]
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


def _newest(rows: pd.DataFrame, tool: str) -> str:
    swept = [r for r in atlas.RELEASES.get(tool, ()) if r in set(rows.loc[rows["tool"] == tool, "release"])]
    return swept[-1] if swept else rows.loc[rows["tool"] == tool, "release"].iloc[-1]


def crash_table(rows: pd.DataFrame) -> pd.DataFrame:
    failed = rows[rows["status"] != OK]
    out = []
    for (tool, release, message), g in failed.groupby(["tool", "release", "message"], sort=True):
        out.append({"tool": tool, "release": release, "models": len(g), "status": g["status"].iloc[0],
                    "message": message[:220]})
    return pd.DataFrame(out, columns=["tool", "release", "models", "status", "message"])


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


def blocks(rows: pd.DataFrame, changes: pd.DataFrame, jobs: pd.DataFrame, store_name: str) -> list:
    models = list(dict.fromkeys(rows["model"]))
    tools = list(dict.fromkeys(rows["tool"]))
    pairs = rows[["tool", "release"]].drop_duplicates()
    jobs_per_model = len(pairs)
    out = [Heading("The discrepancy atlas", 1),
           Para(f"{len(models)} models x {len(tools)} counters x their releases: {len(pairs)} (tool, release) "
                f"pairs, {len(jobs)} jobs, from the sweep store `{store_name}` (`reconcile atlas sweep`; "
                "`reconcile atlas query \"SQL\"` over it). The ratio is the tool's total over the reference "
                "(the document's formulas): its multiply-accumulates for a compute metric, its parameters for a "
                "params metric. `counts`: what the tool counts per layer kind in the document's basis terms "
                "(MACC multiply-accumulates, BIAS bias adds, OUT output elements, ...) with the catalogue entry of "
                "that release; `zero_layers`: layers with multiply-accumulates the tool counted as 0 or has no "
                "rule for. Every row, every release: atlas.csv and atlas.html (sortable, filterable).")]
    swept = [f"{tool} " + ", ".join(_release_order(rows, tool)) for tool in tools]
    out.append(Para("Releases swept (upgrade order; the newest is each tool's pin in constraints.txt): "
                    + "; ".join(swept) + "."))
    out.append(Heading("Per architecture family and tool metric (newest release swept)", 2))
    out.append(Table(family_table(rows), "family x tool metric"))
    out.append(Heading("What changed between releases", 2))
    if len(changes):
        lines = []
        for (tool, a, b), g in changes.groupby(["tool", "from_release", "to_release"], sort=False):
            whys = Counter(w.split(": -")[0].split(": +")[0] for w in g["why"])  # the change, not the layers
            head = f"- {tool} {a} -> {b}: {g['model'].nunique()} model(s)"
            lines.append(head + ": " + "; ".join(f"{w} ({n}x)" if n > 1 else w for w, n in whys.most_common(4)))
        out.append(Para("\n".join(lines)))
        out.append(Table(changes, "release changes"))
    unchanged = []
    for tool in dict.fromkeys(rows["tool"]):
        releases = _release_order(rows.rename(columns={}), tool)
        for a, b in zip(releases, releases[1:]):
            if not ((changes["tool"] == tool) & (changes["from_release"] == a) & (changes["to_release"] == b)).any():
                unchanged.append(f"{tool} {a} -> {b}")
    if unchanged:
        out.append(Para("Same totals on every model: " + ", ".join(unchanged) + "."))
    crashes = crash_table(rows)
    out.append(Heading("Crashes and jobs that did not run", 2))
    out.append(Table(crashes, "crashes") if len(crashes) else Para("None."))
    per_tool, paper = cost_table(jobs, jobs_per_model)
    out.append(Heading("Cost: measured CPU seconds per job, and the full atlas on paper", 2))
    out.append(Table(per_tool, "cost per tool"))
    ran = jobs[jobs["engine"].fillna("") != ""]
    wall, cpu = float(ran["wall_s"].mean() or 0.0), float(ran["cpu_s"].mean() or 0.0)
    out.append(Para(f"The full atlas, every transformers model type with a base-model class ({FULL_MODELS}) x the "
                    f"{jobs_per_model} (tool, release) pairs here, on N workers: at the mean measured {wall:.2f} s of "
                    "wall time per job (fork, model build, the tool, the records; small configurations; this sweep "
                    f"shared its 2 cores with other work), and at the mean {cpu:.2f} CPU seconds per job (a worker "
                    "per idle core):"))
    out.append(Table(paper, "full atlas on paper"))
    newest = {tool: _newest(rows, tool) for tool in tools}
    shown = rows[[newest[t] == r for t, r in zip(rows["tool"], rows["release"])]]
    out.append(Heading("Every total", 2))
    out.append(Para("At each tool's newest release swept; every release: atlas.csv, and atlas.html's last table."))
    out.append(Table(shown.drop(columns=["message"]).reset_index(drop=True), "totals"))
    out.append(Heading("Every release", 2))
    every = rows.drop(columns=["source"]).assign(message=[m[:120] if isinstance(m, str) else m
                                                          for m in rows["message"]])
    out.append(Table(every, "every release"))
    return out


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

    names = ["atlas.md", "atlas.html", "atlas.csv"]
    out = prepare_out_dir(out_dir, names)
    records, jobs = load(store_dir)
    if records.empty:
        from .errors import UserError

        raise UserError(f"{store_dir}: the store holds no jobs yet (`reconcile atlas sweep --out {store_dir}`)")
    irs = _irs(records)
    rows = atlas_rows(records, irs)
    changes = release_changes(records, irs)
    page = blocks(rows, changes, jobs, Path(store_dir).name)
    md = render_md(page[:-2])  # the summary: each tool's newest release
    html = render_html(page[:-4] + page[-2:], "reconcile atlas").replace("</body>", SCRIPT + "</body>")
    if len(md.encode()) > MAX_MD_BYTES:
        md = render_md(page[:-4]) + "\nEvery total: atlas.csv (too long for this page).\n"
    return write_set(out, {"atlas.md": md, "atlas.html": html, "atlas.csv": _csv(rows)})


def _csv(rows: pd.DataFrame) -> str:
    frame = rows.copy()
    for column in ("value", "reference", "zero_layers"):
        frame[column] = [("" if v is None or (isinstance(v, float) and v != v) else
                          str(int(v)) if float(v).is_integer() else repr(float(v))) for v in frame[column]]
    return frame.to_csv(index=False, lineterminator="\n")

