"""The Python API behind the CLI: run tools on models and get the long table as a pandas DataFrame."""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import pandas as pd

import reference_models

from . import adapters, models
from .errors import UserError
from .records import COLUMNS, Record
from .runner import DEFAULT_TIMEOUT_S, Job, run_jobs

_IN_MEMORY: dict[str, object] = {}


def _split(value: "str | Sequence[str] | None") -> Optional[list[str]]:
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value)


def register_module(module, input_shape: Sequence[int], name: str = "user_model") -> models.ModelSpec:
    """A user's own nn.Module as a ModelSpec. Jobs run in forked children, which inherit the object."""
    _IN_MEMORY[name] = module
    return models.ModelSpec(name, tuple(int(d) for d in input_shape), torch_factory=f"{__name__}:_in_memory_{name}")


def __getattr__(attr: str):
    if attr.startswith("_in_memory_") and attr[len("_in_memory_"):] in _IN_MEMORY:
        module = _IN_MEMORY[attr[len("_in_memory_"):]]
        return lambda: module
    raise AttributeError(attr)


def plan(models_: "str | Sequence[str] | None" = None, tools: "str | Sequence[str] | None" = None,
         specs: Iterable[models.ModelSpec] = (), batch: Optional[int] = None) -> list[Job]:
    """Validate names (a UserError before anything runs) and list the jobs, model-major."""
    tool_names = _split(tools) or list(adapters.TOOLS)
    for tool in tool_names:
        adapters.get(tool)
    chosen = list(specs)
    names = _split(models_)
    if names is None and not chosen:
        names = list(reference_models.DEFAULT_SUITE)
    for name in names or []:
        chosen.append(models.resolve(name) if batch is None or name.endswith(".prototxt")
                      else models.reference(name, batch))
    if not chosen:
        raise UserError("no models to run")
    return [Job(tool, spec) for spec in chosen for tool in tool_names]


def run(models: "str | Sequence[str] | None" = None, tools: "str | Sequence[str] | None" = None,
        module=None, input_shape: Optional[Sequence[int]] = None, name: str = "user_model",
        batch: Optional[int] = None, timeout: float = DEFAULT_TIMEOUT_S,
        progress: Optional[Callable] = None, fresh: bool = False) -> pd.DataFrame:
    """Run counters on models and return the records as a DataFrame (columns: records.COLUMNS).

    `models`: reference model names (default: the whole suite) or .prototxt paths; `module` + `input_shape`:
    your own nn.Module instead. `tools`: tool ids (default: all). Jobs whose records are in the result cache
    (reconcile/cache.py) are not run again unless `fresh`; `progress` gets `cached=True` for those."""
    specs = []
    if module is not None:
        if input_shape is None:
            raise UserError("a module needs input_shape, e.g. (1, 3, 224, 224)")
        specs.append(register_module(module, input_shape, name))
    jobs = plan(models, tools, specs, batch)
    df = frame(run_cached(jobs, timeout, progress, fresh))
    # the explain step needs each model's input shape (batch!) to compute its terms
    df.attrs["specs"] = {job.spec.name: job.spec for job in jobs}
    return df


# ------------------------------------------------------------------------------------ the result cache hook
def run_cached(jobs: list[Job], timeout: float = DEFAULT_TIMEOUT_S, progress: Optional[Callable] = None,
               fresh: bool = False) -> list[Record]:
    """`run_jobs` through the result cache (reconcile/cache.py): a job whose records are cached is not run; the
    others run and their records are stored. `fresh`: run every job and overwrite its cache entry. Same records,
    same order as `run_jobs`. `progress(done, total, job, records, seconds, cached=bool)`: hits come first."""
    from . import cache

    results: dict[int, list[Record]] = {}
    for index, job in enumerate(jobs):
        started = time.monotonic()
        hit = None if fresh else cache.load(job)
        if hit is not None:
            results[index] = hit
            if progress:
                progress(len(results), len(jobs), job, hit, time.monotonic() - started, cached=True)
    hits = len(results)
    missing = [index for index in range(len(jobs)) if index not in results]
    produced: dict[int, list[list[Record]]] = {}  # id(job) -> the records of its runs, in completion order

    def ran(done: int, total: int, job: Job, records: list[Record], seconds: float) -> None:
        produced.setdefault(id(job), []).append(records)
        if progress:
            progress(hits + done, len(jobs), job, records, seconds, cached=False)

    if missing:
        run_jobs([jobs[index] for index in missing], timeout, ran)
    for index in missing:
        results[index] = produced[id(jobs[index])].pop(0)
        cache.store(jobs[index], results[index])
    return [record for index in range(len(jobs)) for record in results[index]]


def frame(records: Iterable[Record]) -> pd.DataFrame:
    records = list(records)
    df = pd.DataFrame([r.row() for r in records], columns=COLUMNS)
    # object dtype keeps integer counts integral next to empty values (a float column would print 288000.0)
    df["value"] = pd.Series([r.value for r in records], dtype=object, index=df.index)
    return df


def write_atomic(path: Path, text: str) -> None:
    """Write via a temp file + rename, so a reader never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def to_csv(df: pd.DataFrame) -> str:
    # values: integers print as integers (no 2293000.0), empty for non-ok rows; byte-identical across runs.
    out = df.copy()
    out["value"] = [("" if v is None or (isinstance(v, float) and v != v) else
                     (str(int(v)) if isinstance(v, int) or float(v).is_integer() else repr(float(v))))
                    for v in out["value"]]
    return out.to_csv(index=False, lineterminator="\n")
