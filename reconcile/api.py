"""The Python API behind the CLI: run tools on models and get the long table as a pandas DataFrame."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import tempfile
import threading
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence, Union

import pandas as pd

import reference_models

from . import adapters, models
from .errors import UserError
from .records import COLUMNS, Record
from .runner import DEFAULT_TIMEOUT_S, IRResult, Job, Progress, run_jobs

_IN_MEMORY: dict[str, object] = {}


def _split(value: "str | Sequence[str] | None") -> Optional[list[str]]:
    """Comma-separated names (or a sequence) -> names in order, each once."""
    if value is None:
        return None
    if isinstance(value, str):
        return list(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    return list(dict.fromkeys(value))


def duplicates(value: "str | Sequence[str] | None") -> list[str]:
    """Names listed more than once (the CLI notes them; they run once)."""
    if value is None:
        return []
    names = [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)
    names = [n for n in names if n]
    return list(dict.fromkeys(n for n in names if names.count(n) > 1))


def register_module(module, input_shape: Sequence[int], name: str = "user_model") -> models.ModelSpec:
    """A user's own nn.Module as a ModelSpec. Jobs run in forked children, which inherit the object."""
    _IN_MEMORY[name] = module
    shape = tuple(int(d) for d in input_shape)
    if not shape or min(shape) <= 0:
        raise UserError(f"input_shape must be positive integers, not {tuple(input_shape)}")
    spec = models.ModelSpec(name, models.check_shape(shape, ",".join(map(str, shape))),
                            torch_factory=f"{__name__}:_in_memory_{name}")
    models.forget_irs(spec)  # the name may have held another module before
    return spec


def __getattr__(attr: str):
    if attr.startswith("_in_memory_") and attr[len("_in_memory_"):] in _IN_MEMORY:
        module = _IN_MEMORY[attr[len("_in_memory_"):]]
        return lambda: module
    raise AttributeError(attr)


def plan(models_: "str | Sequence[str] | None" = None, tools: "str | Sequence[str] | None" = None,
         specs: Iterable[models.ModelSpec] = (), batch: Optional[int] = None,
         input_shape: Optional[str] = None) -> list[Job]:
    """Validate names (a UserError before anything runs) and list the jobs, model-major. Names listed twice run
    once; an empty list (tools="") is refused. `input_shape` ("1,3,64,64") replaces the reference models'
    shapes (models.INPUT_SHAPE_RULES)."""
    tool_names = _split(tools)
    if tool_names is None:
        tool_names = list(adapters.TOOLS)
    elif not tool_names:
        raise UserError("--tools is empty: name at least one tool, or leave the option out for all")
    for tool in tool_names:
        adapters.get(tool)
    if batch is not None and batch <= 0:
        raise UserError(f"--batch must be positive, not {batch}")
    if batch is not None and input_shape is not None:
        raise UserError("--batch and --input-shape together: give the batch as the first dimension of "
                        "--input-shape")
    chosen = list(specs)
    names = _split(models_)
    if names is not None and not names and not chosen:
        raise UserError("--models is empty: name at least one model, or leave the option out for the suite")
    if names is None and not chosen:
        names = list(reference_models.DEFAULT_SUITE)
    for name in names or []:
        if name.endswith(".prototxt") or input_shape is not None:
            chosen.append(models.resolve(name, None, input_shape))
        else:
            chosen.append(models.reference(name, batch))
    if not chosen:
        raise UserError("no models to run")
    seen: dict[str, models.ModelSpec] = {}
    for spec in chosen:
        if spec.name in seen and seen[spec.name] != spec:
            raise UserError(f"two models are named {spec.name!r} (records are keyed by model name): rename one")
        seen[spec.name] = spec
    chosen = list(seen.values())
    return [Job(tool, spec) for spec in chosen for tool in tool_names]


class Shared(dict):
    """A DataFrame's attrs are deep-copied into every frame pandas derives from it (each filter): the specs and
    IRs are immutable, so the copies share them (a deep copy of ten models' IRs per filter slowed the report)."""

    def __deepcopy__(self, memo) -> "Shared":
        return self


def execute(jobs: list[Job], timeout: float = DEFAULT_TIMEOUT_S, progress: Optional[Progress] = None) \
        -> pd.DataFrame:
    """Run planned jobs; the DataFrame carries what explaining it needs: attrs["specs"] (name -> ModelSpec),
    attrs["irs"] (name -> layer IR Model, None when tracing failed) and attrs["ir_errors"] (name -> why)."""
    traced: dict[str, IRResult] = {}
    df = frame(run_jobs(jobs, timeout, progress, irs=traced))
    df.attrs["specs"] = Shared({job.spec.name: job.spec for job in jobs})
    df.attrs["irs"] = Shared({name: result.model for name, result in traced.items()})
    df.attrs["ir_errors"] = Shared({name: result.error for name, result in traced.items() if result.error})
    return df


def run(models: "str | Sequence[str] | None" = None, tools: "str | Sequence[str] | None" = None,
        module=None, input_shape: Optional[Sequence[int]] = None, name: str = "user_model",
        batch: Optional[int] = None, timeout: float = DEFAULT_TIMEOUT_S,
        progress: Optional[Progress] = None) -> pd.DataFrame:
    """Run counters on models and return the records as a DataFrame (columns: records.COLUMNS).

    `models`: reference model names (default: the whole suite) or .prototxt paths; `module` + `input_shape`:
    your own nn.Module instead. `tools`: tool ids (default: all)."""
    specs = []
    if module is not None:
        if input_shape is None:
            raise UserError("a module needs input_shape, e.g. (1, 3, 224, 224)")
        specs.append(register_module(module, input_shape, name))
    jobs = plan(models, tools, specs, batch)
    # the explain step needs each model's input shape (batch!) and layer IR: both travel in df.attrs
    return execute(jobs, timeout, progress)


def frame(records: Iterable[Record]) -> pd.DataFrame:
    records = list(records)
    df = pd.DataFrame([r.row() for r in records], columns=COLUMNS)
    # object dtype keeps integer counts integral next to empty values (a float column would print 288000.0)
    df["value"] = pd.Series([r.value for r in records], dtype=object, index=df.index)
    return df


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _stage(path: Path, data: Union[str, bytes]) -> str:
    """`data` in a temp file next to `path`, with the mode a plain open() would give (mkstemp's is 0600)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(tmp, 0o666 & ~_umask())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def write_atomic(path: Path, text: Union[str, bytes]) -> None:
    """Write via a temp file + rename, so a reader never sees a half-written file. The rename replaces a
    symlink at `path` instead of writing through it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _stage(path, text)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# ------------------------------------------------------------------------------------------ output sets
MANIFEST = ".reconcile-manifest.json"  # written last: the run id and every file of the set with its sha256
RUN_OUTPUTS = ("records.csv", "explanations.csv", "report.md", "report.html")


def prepare_out_dir(out: "str | Path", names: Iterable[str] = (), option: str = "--out") -> Path:
    """Refuse an empty or non-directory output folder and check it is writable, before any job runs."""
    text = str(out)
    if not text.strip():
        raise UserError(f"{option} is empty: name a directory, e.g. {option} reports")
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise UserError(f"{option} {text}: exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{option} {text}: cannot create the directory ({exc.strerror or exc})") from None
    for name in list(names) + [MANIFEST]:
        target = path / name
        if target.is_dir() and not target.is_symlink():
            raise UserError(f"{option} {text}: {target} is a directory; an output file goes there")
    try:
        fd, probe = tempfile.mkstemp(dir=path, prefix=".reconcile-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"{option} {text}: not writable ({exc.strerror or exc})") from None
    return path


def read_manifest(out_dir: Path) -> Optional[dict]:
    try:
        data = json.loads((Path(out_dir) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict) or not all(isinstance(k, str) and "/" not in k and k not in ("", ".", "..")
                                              for k in files):
        return None
    return data


def check_outputs(out_dir: "str | Path") -> list[str]:
    """What is wrong with the output set in `out_dir`: [] when every file the manifest lists has its recorded
    content (the set one run wrote, complete); readers call this before trusting the files together."""
    out_dir = Path(out_dir)
    manifest = read_manifest(out_dir)
    if manifest is None:
        return [f"{out_dir}: no readable {MANIFEST} (not written by a complete run)"]
    problems = []
    for name, digest in sorted(manifest["files"].items()):
        try:
            actual = hashlib.sha256((out_dir / name).read_bytes()).hexdigest()
        except OSError:
            problems.append(f"{name}: missing (run {manifest.get('run_id')})")
            continue
        if actual != digest:
            problems.append(f"{name}: not the file run {manifest.get('run_id')} wrote")
    return problems


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """SIGINT/SIGTERM/SIGHUP wait until the block ends (then act as usual): the renames that switch an output
    set in take microseconds and must not be cut in half. Only the main thread can do this."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    saved = {}
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        saved[sig] = signal.signal(sig, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(caught):
            signal.raise_signal(sig)


def write_set(out_dir: Path, files: dict[str, Union[str, bytes]]) -> dict[str, Path]:
    """Write a run's output files as one set: every file is staged as a temp file in `out_dir` (an interrupt
    there leaves the previous set untouched), then all are renamed into place with signals deferred, then the
    manifest (run id + sha256 of every file) is written last. Files the previous manifest listed and this set
    does not (an earlier run's charts) are removed; nothing else in `out_dir` is touched."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    encoded = {name: (data.encode("utf-8") if isinstance(data, str) else data) for name, data in files.items()}
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in sorted(encoded.items())}
    run_id = hashlib.sha256(json.dumps(digests, sort_keys=True).encode()).hexdigest()[:16]  # reruns: same bytes
    manifest = json.dumps({"run_id": run_id, "files": digests}, indent=1, sort_keys=True) + "\n"
    previous = read_manifest(out_dir)
    staged: dict[str, str] = {}
    try:
        for name, data in encoded.items():
            staged[name] = _stage(out_dir / name, data)
        staged[MANIFEST] = _stage(out_dir / MANIFEST, manifest)
        with _signals_deferred():
            for name, tmp in staged.items():
                if name != MANIFEST:
                    os.replace(tmp, out_dir / name)
            os.replace(staged[MANIFEST], out_dir / MANIFEST)
            staged.clear()
    finally:
        for tmp in staged.values():
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    for name in sorted(set(previous["files"]) - set(files) - {MANIFEST}) if previous else ():
        stale = out_dir / name
        if stale.is_symlink() or stale.is_file():
            with contextlib.suppress(OSError):
                stale.unlink()
    return {name: out_dir / name for name in files}


def to_csv(df: pd.DataFrame) -> str:
    # values: integers print as integers (no 2293000.0), empty for non-ok rows; byte-identical across runs.
    out = df.copy()
    out["value"] = [("" if v is None or (isinstance(v, float) and v != v) else
                     (str(int(v)) if isinstance(v, int) or float(v).is_integer() else repr(float(v))))
                    for v in out["value"]]
    return out.to_csv(index=False, lineterminator="\n")
