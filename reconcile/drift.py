"""The tool-version matrix: run one adapter against several releases of its tool and explain what changed.

Each release is pip-installed (`--no-deps --target`) into its own cache folder, `<cache>/<dist>-<version>`, reused
when present; each (version, model) job runs in a forked child with that folder first on sys.path and the
adapter's import shims (reconcile/runner.py `Job.extra_path` / `Job.shims`). Every number is decomposed per
version with the diff engine (conventions catalogue keyed by version ranges), and a change is phrased by comparing
the decompositions of the same (layer, metric) across versions: thop 0.0.31's conv `1*MACC + 1*BIAS` against
0.1.1's `1*MACC` reads "conv bias adds no longer counted".

Outputs (reconcile/commands/matrix.py): DIR/records.csv (every version's records), DIR/drift.csv (one row per
model, layer, quantity, metric and consecutive pair of versions, in the order given) and DIR/report_drift.md
(+ .html), a separate report so `reconcile run` and `reconcile matrix` can share an output folder.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import pandas as pd

from conventions.ir import Model

from . import adapters, changes
from .errors import UserError
from .records import ERROR, MODEL_LEVEL, OK, TOTAL, Emitter, Record

CACHE_ENV = "RECONCILE_TOOL_CACHE"  # else <the cache folder>/tools (reconcile/cache.py), never the working directory
PIP_TIMEOUT_S = 600

COLUMNS = ["model", "layer", "layer_kind", "quantity", "metric", "from_version", "to_version", "from_value",
           "to_value", "delta", "from_decomposition", "to_decomposition", "term_change", "change", "explanation",
           "from_status", "to_status", "sources"]


# ------------------------------------------------------------------------------------------------- installing
@dataclass(frozen=True)
class Install:
    version: str  # as requested, in PEP 440 normal form when it parses
    folder: Optional[Path]
    how: str  # "reused" | "installed" | "failed"
    error: str = ""


def normal_version(text: str) -> str:
    """"0.0.31-2005241907" and "0.0.31.post2005241907" are one release; folder names and labels use the latter."""
    from packaging.version import InvalidVersion, Version

    try:
        return str(Version(text.strip()))
    except InvalidVersion:
        return text.strip()


def valid_version(text: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        Version(text)
    except InvalidVersion:
        return False
    return True


def cache_root(explicit: Optional[str] = None) -> Path:
    from .cache import cache_root as root

    return Path(explicit or os.environ.get(CACHE_ENV) or root() / "tools")


def install_folder(cache: Path, dist: str, version: str) -> Path:
    return cache / f"{dist}-{version}"


def is_installed(folder: Path, dist: str, version: str) -> bool:
    """A finished install: pip writes the .dist-info last, and we move the folder into place only on success."""
    from importlib.metadata import distributions

    if not folder.is_dir():
        return False
    return any((d.metadata["Name"] or "").lower().replace("_", "-") == dist.lower().replace("_", "-")
               and normal_version(d.version) == version for d in distributions(path=[str(folder)]))


def pip_command(dist: str, version: str, target: Path) -> list[str]:
    """The venv's own pip (sys.executable), from the package registry it is configured for; --no-deps because
    the tool must run against this venv's torch, not pull another."""
    return [sys.executable, "-m", "pip", "install", "--no-deps", "--no-input", "--disable-pip-version-check",
            "--quiet", "--target", str(target), f"{dist}=={version}"]


# pip's words for a package index it could not reach; it then says "No matching distribution found", which
# reads as if the release did not exist.
_UNREACHABLE = ("NewConnectionError", "Failed to establish a new connection", "Temporary failure in name resolution",
                "Name or service not known", "Network is unreachable", "Could not fetch URL", "ConnectTimeoutError",
                "ProxyError", "SSLError", "Connection refused", "Max retries exceeded")


def pip_error(stderr: str) -> str:
    """pip's reason in one line ("No matching distribution found for thop==9.9.9"; "the package index could not
    be reached ..." when that is why)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    unreachable = next((m for line in lines for m in _UNREACHABLE if m in line), None)
    if unreachable:
        return (f"the package index could not be reached ({unreachable}); check the network, or pip's index-url "
                "(pip config list)")
    if any(marker in line for line in lines for marker in _BUILD_FAILED):
        # the source distribution's own setup.py failed: its exception, not pip's "See above for details"
        import re

        causes = [line for line in lines if re.match(r"^[\w.]*(Error|Exception|Exit)\b[^:]*:", line)]
        cause = re.sub(r"[^\s'\"]*/pip-[\w-]+/[^/\s]+/", "", causes[-1]) if causes else ""
        return "building it from its source distribution failed" + (f" ({cause[:200]})" if cause else "")
    errors = [line.removeprefix("ERROR: ") for line in lines if line.startswith("ERROR:")]
    return (errors or lines or ["pip failed without a message"])[-1]


# pip's words for a source distribution whose setup.py (metadata or build step) failed.
_BUILD_FAILED = ("metadata-generation-failed", "subprocess-exited-with-error", "Failed to build")

Runner = Callable[..., subprocess.CompletedProcess]


def install(dist: str, version: str, cache: Path, run: Runner = subprocess.run) -> Install:
    """Reuse `<cache>/<dist>-<version>` when it holds that release; else pip-install into a temporary folder and
    rename it into place, so an interrupted install is never mistaken for a finished one."""
    if not valid_version(version):
        return Install(version, None, "failed", f"{version!r} is not a valid version number (PEP 440)")
    folder = install_folder(cache, dist, version)
    if is_installed(folder, dist, version):
        return Install(version, folder, "reused")
    cache.mkdir(parents=True, exist_ok=True)
    partial = cache / f".{dist}-{version}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        proc = run(pip_command(dist, version, partial), capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        shutil.rmtree(partial, ignore_errors=True)
        return Install(version, None, "failed", f"pip install {dist}=={version} timed out after {PIP_TIMEOUT_S} s")
    if proc.returncode != 0 or not is_installed(partial, dist, version):
        shutil.rmtree(partial, ignore_errors=True)
        reason = pip_error(proc.stderr) if proc.returncode != 0 else "pip installed no matching .dist-info"
        return Install(version, None, "failed", f"pip could not install {dist}=={version}: {reason}")
    shutil.rmtree(folder, ignore_errors=True)  # a stale, unfinished folder of that name
    os.replace(partial, folder)
    return Install(version, folder, "installed")


# ---------------------------------------------------------------------------------------------------- running
def tool_distribution(tool: str) -> tuple[object, str]:
    module = adapters.get(tool)
    dist = getattr(module, "DISTRIBUTION", None)
    if not dist:
        raise UserError(f"tool {tool!r} is not a pip-installable counter (its adapter names no DISTRIBUTION)")
    if module.WORKER != "torch" and module.WORKER != "pure":
        # the TF worker runs jobs in-process (TensorFlow is not fork-safe), so a per-job sys.path cannot apply
        raise UserError(f"tool {tool!r} runs in the in-process {module.WORKER} worker; the version matrix needs a "
                        f"forked worker")
    return module, dist


def parse_versions(text: str) -> list[str]:
    """--versions: PEP 440 versions in normal form, each once (reconcile.validate)."""
    from .validate import parse_versions as parse

    return parse(text)


def failed_rows(module, inst: Install, specs) -> list[Record]:
    return [Emitter(spec.name, module.FRAMEWORK, module.TOOL, inst.version).status(ERROR, inst.error)
            for spec in specs]


def checked(records: Iterable[Record], requested: str) -> list[Record]:
    """Rows in the requested version's name. A row the worker wrote (timeout, crash) already carries it (runner
    `_emitter` reads the version with the install on the path); an ok row from another version means the cached
    install did not shadow the venv's, which would make the whole comparison a lie: it becomes an error row."""
    out = []
    for rec in records:
        if rec.tool_version != requested and rec.status == OK:
            rec = replace(rec, value=None, status=ERROR,
                          message=f"asked for {rec.tool} {requested} but the child imported {rec.tool_version} "
                                  f"(value {rec.value} discarded)")
        elif rec.tool_version != requested:
            rec = replace(rec, tool_version=requested)
        out.append(rec)
    return out


def jobs_for(module, inst: Install, specs) -> list:
    from .runner import Job

    folder = str(inst.folder.resolve())
    return [Job(module.TOOL, spec, extra_path=(folder,), shims=tuple(getattr(module, "SHIMS", ())))
            for spec in specs]


def run_matrix(tool: str, versions: Sequence[str], specs: Sequence, cache: Path, timeout: float,
               progress=None, on_install: Optional[Callable[[Install], None]] = None,
               run: Runner = subprocess.run) -> tuple[pd.DataFrame, list[Install]]:
    """Install every version (or reuse it), run every model against each in one torch worker (torch imported
    once), and return all records, version-major, with the installs."""
    from .api import frame
    from .runner import run_jobs

    module, dist = tool_distribution(tool)
    installs = []
    for version in versions:
        inst = install(dist, version, cache, run)
        installs.append(inst)
        if on_install:
            on_install(inst)
    jobs = [job for inst in installs if inst.folder is not None for job in jobs_for(module, inst, specs)]
    owner = {id(job): job.extra_path[0] for job in jobs}
    per_folder: dict[str, list[Record]] = {}

    def collect(done, total, job, records, seconds) -> None:
        # run_jobs flattens records; the progress callback sees each job with its own rows
        per_folder.setdefault(owner[id(job)], []).extend(records)
        if progress:
            progress(done, total, job, records, seconds)

    if jobs:
        run_jobs(jobs, timeout, collect)
    records: list[Record] = []
    for inst in installs:
        if inst.folder is None:
            records += failed_rows(module, inst, specs)
        else:
            records += checked(per_folder.get(str(inst.folder.resolve()), []), inst.version)
    return frame(records), installs


# ------------------------------------------------------------------------------------------ decompositions
# The readings and their wording live in reconcile/changes.py (shared with the golden snapshots).
Reading, term_change, convention_change, n, signed, state = (changes.Reading, changes.term_change,
                                                             changes.convention_change, changes.n, changes.signed,
                                                             changes.state)
layer_change, summarise, _int = changes.layer_change, changes.summarise, changes.as_int


def reading(rec, ir: Optional[Model]) -> Reading:
    return changes.reading(rec, changes.ir_layer_terms(ir))


# ------------------------------------------------------------------------------------------------ drift rows
Key = tuple[str, str, str, str]  # model, layer, quantity, metric


def readings_by_key(records: pd.DataFrame, irs: dict[str, Optional[Model]]) -> dict[Key, dict[str, Reading]]:
    out: dict[Key, dict[str, Reading]] = {}
    layers = {model: changes.ir_layer_terms(ir) for model, ir in irs.items()}
    for rec in records.itertuples(index=False):
        if rec.layer == MODEL_LEVEL:
            continue
        key = (rec.model, rec.layer, rec.quantity, rec.metric)
        out.setdefault(key, {})[rec.tool_version] = changes.reading(rec, layers.get(rec.model, {}))
    return out


def failed_versions(records: pd.DataFrame, model: str) -> dict[str, str]:
    """Versions with a model-level non-ok row for this model (install failed, job crashed): version -> reason."""
    df = records[(records["model"] == model) & (records["layer"] == MODEL_LEVEL) & (records["status"] != OK)]
    return {rec.tool_version: f"{rec.status}: {rec.message}" for rec in df.itertuples(index=False)}


def _pair_row(key: Key, va: str, vb: str, a: Optional[Reading], b: Optional[Reading], tool: str) -> dict:
    model, layer, quantity, metric = key
    delta, terms_text, change = layer_change(a, b)
    kind = (b.kind if b else "") or (a.kind if a else "")
    head = f"{tool} {va} -> {vb} {model} {layer} {metric}: {state(a)} -> {state(b)}"
    if delta:
        head += f", {signed(delta)}" + (f" = {terms_text} on this layer" if terms_text else "")
    sources = " -> ".join(dict.fromkeys(r.source for r in (a, b) if r is not None and r.source))
    return {"model": model, "layer": layer, "layer_kind": kind, "quantity": quantity, "metric": metric,
            "from_version": va, "to_version": vb, "from_value": a.value if a else None,
            "to_value": b.value if b else None, "delta": delta, "from_decomposition": a.text if a else "",
            "to_decomposition": b.text if b else "", "term_change": terms_text, "change": change,
            "explanation": f"{head}: {change}", "from_status": a.status if a else "missing",
            "to_status": b.status if b else "missing", "sources": sources}


def _total_row(row: dict, layer_rows: list[dict], tool: str) -> dict:
    """A total's change as the sum of its layers' changes, grouped by convention change."""
    same = [r for r in layer_rows if (r["model"], r["quantity"], r["metric"], r["from_version"], r["to_version"])
            == (row["model"], row["quantity"], row["metric"], row["from_version"], row["to_version"])]
    if row["delta"] is None:
        return row
    change = changes.total_change(row["delta"], [(r["layer"], r["delta"], r["change"]) for r in same]) or \
        "unchanged"
    head = (f"{tool} {row['from_version']} -> {row['to_version']} {row['model']} total {row['metric']}: "
            f"{n(row['from_value'])} -> {n(row['to_value'])}" + (f" ({signed(row['delta'])})" if row["delta"] else ""))
    return {**row, "change": change, "explanation": f"{head}: {change}"}


def drift_rows(records: pd.DataFrame, versions: Sequence[str], irs: dict[str, Optional[Model]]) -> pd.DataFrame:
    """One row per model, layer, quantity, metric and consecutive pair of the versions that ran that model; one
    error row per (model, version) that did not run."""
    tool = records["tool"].iloc[0] if len(records) else ""
    by_key = readings_by_key(records, irs)
    rows, totals = [], []
    for model in dict.fromkeys(records["model"]):
        failed = failed_versions(records, model)
        for version, reason in failed.items():
            rows.append({"model": model, "layer": MODEL_LEVEL, "quantity": "", "metric": "", "from_version": "",
                         "to_version": version, "to_status": ERROR, "change": "did not run",
                         "explanation": f"{tool} {version} {model}: {reason}"})
        ran = [v for v in versions if v not in failed]
        for key, by_version in by_key.items():
            if key[0] != model:
                continue
            for va, vb in zip(ran, ran[1:]):
                row = _pair_row(key, va, vb, by_version.get(va), by_version.get(vb), tool)
                (totals if key[1] == TOTAL else rows).append(row)
    rows += [_total_row(row, rows, tool) for row in totals]
    out = pd.DataFrame(rows, columns=COLUMNS)
    for column in ("from_value", "to_value", "delta"):
        out[column] = pd.Series([_int(v) if v is not None and v == v else None for v in out[column]],
                                dtype=object, index=out.index)
    return out


def irs_for(specs: Sequence, timeout: Optional[float] = None) -> dict[str, Optional[Model]]:
    """Each model's layer IR, the form diff.canonical_ir reads (torch, else caffe, else keras), traced in job
    processes (reconcile.runner.trace_irs: the models' code never runs here); None where it cannot be traced."""
    from .models import canonical_framework
    from .runner import trace_irs

    traceable = [spec for spec in specs if canonical_framework(spec)]
    traced = trace_irs([(spec, canonical_framework(spec)) for spec in traceable], timeout) if traceable else []
    irs = {spec.name: result.model for spec, result in zip(traceable, traced)}
    return {spec.name: irs.get(spec.name) for spec in specs}


def drift_csv(drift: pd.DataFrame) -> str:
    out = drift.copy()
    for column in ("from_value", "to_value", "delta"):
        out[column] = ["" if v is None or v != v else str(v) for v in out[column]]
    return out.to_csv(index=False, lineterminator="\n")


# ----------------------------------------------------------------------------------------------------- report
def shims_used(records: pd.DataFrame) -> dict[str, set[str]]:
    """version -> the shim notes its records carry (reconcile/shims.py `note`)."""
    out: dict[str, set[str]] = {}
    for rec in records.itertuples(index=False):
        if "shim used" in (rec.message or ""):
            out.setdefault(rec.tool_version, set()).add(rec.message[rec.message.index("shim used"):])
    return out


def totals_by_version(records: pd.DataFrame, model: str, versions: Sequence[str]) -> pd.DataFrame:
    df = records[(records["model"] == model) & records["layer"].isin([TOTAL, MODEL_LEVEL])]
    metrics = list(dict.fromkeys((r.quantity, r.metric) for r in df.itertuples(index=False) if r.layer == TOTAL))
    rows = []
    for quantity, metric in metrics:
        row = {"quantity": quantity, "metric": metric}
        for version in versions:
            hit = df[(df["tool_version"] == version) & (df["quantity"] == quantity) & (df["metric"] == metric)
                     & (df["layer"] == TOTAL)]
            failed = df[(df["tool_version"] == version) & (df["layer"] == MODEL_LEVEL)]
            row[version] = (n(hit["value"].iloc[0]) if len(hit) and hit["status"].iloc[0] == OK else
                            (hit["status"].iloc[0] if len(hit) else (failed["status"].iloc[0] if len(failed) else "")))
        rows.append(row)
    return pd.DataFrame(rows, columns=["quantity", "metric", *versions])


def report_blocks(tool: str, versions: Sequence[str], installs: Sequence[Install], records: pd.DataFrame,
                  drift: pd.DataFrame) -> list:
    from .render import Heading, Para, Table

    blocks = [Heading(f"Drift: {tool} across versions {', '.join(versions)}", 1),
              Para("Each version was pip-installed (`--no-deps --target`) into its own cache folder and run by the "
                   "same adapter in its own forked process, with that folder first on `sys.path`. Every number is "
                   "decomposed into the document's basis terms with the convention catalogue of its own version; "
                   "a change is the difference of the decompositions of the same layer and metric "
                   "(`reconcile/drift.py`). Rows: `drift.csv`; every version's records: `records.csv`.")]
    blocks.append(Table(pd.DataFrame([{"version": i.version, "install": i.how,
                                       "folder": str(i.folder) if i.folder else "", "error": i.error}
                                      for i in installs]), "installs"))
    for version, notes in sorted(shims_used(records).items()):
        blocks.append(Para(f"`{version}` ran with an import shim: " + "; ".join(sorted(notes))))
    for model in dict.fromkeys(records["model"]):
        blocks.append(Heading(f"{model}", 2))
        blocks.append(Table(totals_by_version(records, model, versions), f"{model}: totals by version"))
        df = drift[drift["model"] == model]
        lines = [f"- `{r.from_version}` -> `{r.to_version}` ({r.metric}): {r.change}"
                 for r in df[df["layer"] == TOTAL].itertuples(index=False)]
        lines += [f"- `{r.to_version}`: {r.explanation}"
                  for r in df[df["layer"] == MODEL_LEVEL].itertuples(index=False)]
        if lines:
            blocks.append(Para("\n".join(lines)))
        changed = df[~df["layer"].isin([TOTAL, MODEL_LEVEL]) & ~df["change"].isin(["unchanged", "unchanged status"])]
        if len(changed):
            table = changed[["layer", "layer_kind", "metric", "from_version", "to_version", "from_value", "to_value",
                             "delta", "from_decomposition", "to_decomposition", "change"]]
            blocks.append(Table(table.reset_index(drop=True), f"{model}: layers whose numbers changed"))
        same = df[~df["layer"].isin([TOTAL, MODEL_LEVEL]) & df["change"].isin(["unchanged", "unchanged status"])]
        blocks.append(Para(f"{len(same)} other layer numbers are unchanged between consecutive versions."))
    return blocks


def write_outputs(out_dir: Path, tool: str, versions: Sequence[str], installs: Sequence[Install],
                  records: pd.DataFrame, drift: pd.DataFrame) -> dict[str, Path]:
    from .api import write_set
    from .render import render_html, render_md, to_csv

    blocks = report_blocks(tool, versions, installs, records, drift)
    return write_set(out_dir, {"records.csv": to_csv(records), "drift.csv": drift_csv(drift),  # one set, manifest last
                               "report_drift.md": render_md(blocks), "report_drift.html": render_html(blocks)})
