"""The Python API behind the CLI: run tools on models and get the long table as a pandas DataFrame."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence, Union

import pandas as pd

import reference_models

from . import adapters, models
from .errors import UserError
from .records import COLUMNS, Record
from .render import stage as _stage, to_csv, write_atomic  # noqa: F401  (public here since the first release)
from .runner import DEFAULT_TIMEOUT_S, IRResult, Job, Progress, run_jobs
from .validate import optional_count, shape_value

_IN_MEMORY: dict[str, object] = {}


def split_specs(text: str) -> list[str]:
    """'lenet,module:m:f?input_shape=1,3,8,8&depths=2,2,sepnet' -> the three specs; 'hf:x?inputs=a,b,lenet' -> two.
    A comma inside a spec's query continues its value (a shape, a list of numbers or of input names) when what
    follows cannot start a model: a digit (no model name starts with one), or a bare word that names no reference
    model (no prefix, no query, no file suffix), with the query's next keys after it."""
    out: list[str] = []
    for part in text.split(","):
        if out and "?" in out[-1] and (part[:1].isdigit() or _continues_value(part.strip())):
            out[-1] += "," + part
        else:
            out.append(part)
    return [p.strip() for p in out]


def _continues_value(part: str) -> bool:
    """'past_time_features' or 'past_time_features&lags=3' after 'hf:x?inputs=past_values': the value goes on."""
    word = part.split("&", 1)[0]
    return word.isidentifier() and word not in reference_models.MODELS and not any(ch in part for ch in ":?")


def _split(value: "str | Sequence[str] | None") -> Optional[list[str]]:
    """Comma-separated names or specs (or a sequence) -> in order, each once."""
    if value is None:
        return None
    if isinstance(value, str):
        return list(dict.fromkeys(v for v in split_specs(value) if v))
    if not all(isinstance(v, str) for v in value):
        raise UserError(f"expected names as text, not {list(value)!r}"[:200])
    return list(dict.fromkeys(value))


def duplicates(value: "str | Sequence[str] | None") -> list[str]:
    """Names listed more than once (the CLI notes them; they run once)."""
    if value is None:
        return []
    names = split_specs(value) if isinstance(value, str) else list(value)
    names = [n for n in names if n]
    return list(dict.fromkeys(n for n in names if names.count(n) > 1))


def register_module(module, input_shape: "Sequence[int] | str", name: str = "user_model") -> models.ModelSpec:
    """A user's own nn.Module as a ModelSpec. Jobs run in forked children, which inherit the object."""
    shape = shape_value(input_shape, "input_shape", min_dims=2)
    if not isinstance(name, str) or not name.isidentifier():
        raise UserError(f"name must be a Python identifier like 'my_net', not {name!r}"[:200])
    _IN_MEMORY[name] = module
    spec = models.ModelSpec(name, shape, torch_factory=f"{__name__}:_in_memory_{name}")
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
    batch = optional_count(batch, "--batch")
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


def execute(jobs: list[Job], timeout: float = DEFAULT_TIMEOUT_S, progress: Optional[Progress] = None,
            fresh: bool = False) -> pd.DataFrame:
    """Run planned jobs (through the result cache unless `fresh`); the DataFrame carries what explaining it
    needs: attrs["specs"] (name -> ModelSpec), attrs["irs"] (name -> layer IR Model, None when tracing failed;
    models whose every job was cached have none here and are traced, in a job, when explained) and
    attrs["ir_errors"] (name -> why)."""
    from . import cache
    from .runner import trace_irs

    traced: dict[str, IRResult] = {}
    df = frame(run_cached(jobs, timeout, progress, fresh, traced))
    # models whose every job came from the cache: their IR from the disk cache, else traced in a job process
    untraced = [spec for spec in {job.spec.name: job.spec for job in jobs}.values()
                if spec.name not in traced and models.canonical_framework(spec)]
    for spec in untraced:
        stored = cache.stored_ir(spec, models.canonical_framework(spec))
        if stored is not None:
            traced[spec.name] = IRResult(stored)
    missing = [spec for spec in untraced if spec.name not in traced]
    if missing:
        found = trace_irs([(spec, models.canonical_framework(spec)) for spec in missing], timeout)
        traced.update({spec.name: result for spec, result in zip(missing, found)})
    df.attrs["specs"] = Shared({job.spec.name: job.spec for job in jobs})
    df.attrs["irs"] = Shared({name: result.model for name, result in traced.items()})
    df.attrs["ir_errors"] = Shared({name: result.error for name, result in traced.items() if result.error})
    return df


def run(models: "str | Sequence[str] | None" = None, tools: "str | Sequence[str] | None" = None,
        module=None, input_shape: "Sequence[int] | str | None" = None, name: str = "user_model",
        batch: Optional[int] = None, timeout: float = DEFAULT_TIMEOUT_S,
        progress: Optional[Progress] = None, model_file: Optional[str] = None, fresh: bool = False,
        memory: "str | int | None" = None) -> pd.DataFrame:
    """Run counters on models and return the records as a DataFrame (columns: records.COLUMNS).

    `models`: reference model names (default: the whole suite) or .prototxt paths; `module` + `input_shape`:
    your own nn.Module instead; `model_file` "PATH.py:FACTORY" + `input_shape` "N,C,H,W": a factory in a file.
    `tools`: tool ids (default: all). `records.attrs["specs"]`: each model's spec (its input shape). Jobs whose
    records are in the result cache (reconcile/cache.py) are not run again unless `fresh`; `progress` gets
    `cached=True` for those. `memory`: each job's memory cap ("4G", "50%", bytes; default jobs.memory_cap).
    Every argument is checked first (reconcile.validate): bad input is a UserError before anything runs."""
    from . import models as model_specs  # the argument `models` hides the module
    from .jobs import limits
    from .validate import check_timeout, parse_memory

    specs = []
    timeout = check_timeout(timeout)
    batch = optional_count(batch, "batch")
    cap = None if memory is None else parse_memory(memory, "memory")
    reference_shape = None
    with limits(timeout, cap):
        if model_file is not None:
            shape = input_shape if input_shape is None else \
                ",".join(map(str, shape_value(input_shape, "input_shape", min_dims=2)))
            specs.append(model_specs.from_model_file(model_file, shape))
        elif module is not None:
            if input_shape is None:
                raise UserError("a module needs input_shape, e.g. (1, 3, 224, 224)")
            specs.append(register_module(module, input_shape, name))
        elif input_shape is not None:  # replaces the reference models' shapes (models.INPUT_SHAPE_RULES)
            reference_shape = ",".join(map(str, shape_value(input_shape, "input_shape")))
        jobs = plan(models, tools, specs, batch, reference_shape)
        # the explain step needs each model's input shape (batch!) and layer IR: both travel in df.attrs
        return execute(jobs, timeout, progress, fresh)


# ------------------------------------------------------------------------------------ the result cache hook
def run_cached(jobs: list[Job], timeout: float = DEFAULT_TIMEOUT_S, progress: Optional[Callable] = None,
               fresh: bool = False, irs: Optional[dict] = None, root: "str | Path | None" = None,
               spread: bool = False) -> list[Record]:
    """`run_jobs` through the cache (reconcile/cache.py; `root`: another cache folder than cache.cache_root()): a
    job whose records are cached is not run; the others run and their records are stored with the user files
    their process imported. `fresh`: run every job and overwrite its cache entry. Same records, same order as
    `run_jobs`. `progress(done, total, job, records, seconds, cached=bool)`: hits come first. `spread`: one model's
    torch jobs over every torch lane (run_jobs), for a single model's tools in parallel."""
    from . import cache
    from .runner import check_timeout

    timeout = check_timeout(timeout)  # even when every job comes from the cache
    root = Path(root) if root else None
    results: dict[int, list[Record]] = {}
    for index, job in enumerate(jobs):
        started = time.monotonic()
        hit = None if fresh else cache.load(job, root)
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

    imports: dict[int, tuple] = {}
    if missing:
        run_jobs([jobs[index] for index in missing], timeout, ran, irs=irs, imports=imports, spread=spread)
    for position, index in enumerate(missing):
        results[index] = produced[id(jobs[index])].pop(0)
        cache.store(jobs[index], results[index], imports.get(position), root)
    return [record for index in range(len(jobs)) for record in results[index]]


def frame(records: Iterable[Record]) -> pd.DataFrame:
    records = list(records)
    df = pd.DataFrame([r.row() for r in records], columns=COLUMNS)
    # object dtype keeps integer counts integral next to empty values (a float column would print 288000.0)
    df["value"] = pd.Series([r.value for r in records], dtype=object, index=df.index)
    return df


# ------------------------------------------------------------------------------------------ output sets
MANIFEST = ".reconcile-manifest.json"  # written last: the run id and every file of the set with its sha256
RUN_OUTPUTS = ("records.csv", "explanations.csv", "report.md", "report.html")
OUTPUT_FOLDERS = ("models",)  # the model pages and charts


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
    for folder in OUTPUT_FOLDERS:
        if (path / folder).is_symlink() or ((path / folder).exists() and not (path / folder).is_dir()):
            raise UserError(f"{option} {text}: {path / folder} is a symbolic link or a file; outputs are never "
                            "written through one: remove it")
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
    # names are plain file names or one level below (models/lenet.md), never absolute or climbing out
    if not isinstance(files, dict) or not all(isinstance(k, str) and k.count("/") <= 1 and not any(
            part in ("", ".", "..") for part in k.split("/")) for k in files):
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
    for name in encoded:
        _check_output_name(out_dir, name)
    staged: dict[str, str] = {}
    try:
        for name, data in encoded.items():
            (out_dir / name).parent.mkdir(parents=True, exist_ok=True)
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
        _remove_stale(out_dir, name)
    return {name: out_dir / name for name in files}


def _check_output_name(out_dir: Path, name: str) -> None:
    """An output name is a file of `out_dir` or of a real folder in it: no '..', no absolute path, and no
    symbolic link on the way (a symlinked models/ would send the pages elsewhere)."""
    from .identity import inside

    parts = name.split("/")
    for depth in range(1, len(parts)):
        folder = out_dir.joinpath(*parts[:depth])
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            raise UserError(f"{folder} is a symbolic link or a file; outputs are never written through one: "
                            "remove it")
    try:
        inside(out_dir, *parts)
    except ValueError:
        raise UserError(f"output {name[:80]!r} would leave {out_dir}") from None


def _remove_stale(out_dir: Path, name: str) -> None:
    """Remove a file an earlier run wrote, never following a symbolic link: each folder on the way is opened
    with O_NOFOLLOW (a symlinked models/ stops the walk) and the file itself is unlinked, not its target."""
    import stat

    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return
    try:
        fd = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        for part in parts[:-1]:
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = inner
        info = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
        if stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode):
            os.unlink(parts[-1], dir_fd=fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------------------ listings
_PINNED_AS = {"tf_profiler": "tensorflow-cpu", "torch_flop_counter": "torch"}  # tools that ship inside a framework
_READS = {"torch": "a torch nn.Module (forward hooks or a trace)", "keras": "the Keras twin of the model",
          "caffe": "a Caffe prototxt", "ir": "the layer IR (the reference document's formulas)"}
CONSTRAINTS = Path(__file__).resolve().parent.parent / "constraints.txt"


def pins(path: Path = CONSTRAINTS) -> dict[str, str]:
    """constraints.txt as {distribution (normalised): version}."""
    import re

    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+)", line)
        if match:
            out[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return out


def list_tools() -> pd.DataFrame:
    """One row per counting tool: id, installed version, pinned version, what it reads."""
    import re

    pinned = pins()
    rows = []
    for tool in adapters.TOOLS:
        module = adapters.get(tool)
        dist = getattr(module, "DISTRIBUTION", None) or _PINNED_AS.get(tool, "")
        try:
            installed = module.unavailable() or module.version()
        except Exception as exc:  # an adapter whose tool is broken here: say so, list the others
            installed = f"cannot tell ({type(exc).__name__})"
        pin = pinned.get(re.sub(r"[-_.]+", "-", dist).lower(), "") if dist else ""
        rows.append({"tool": tool, "installed": installed,
                     "pinned": f"{dist}=={pin}" if pin else ("(in the repository)" if not dist else ""),
                     "reads": _READS.get(module.FRAMEWORK, module.FRAMEWORK)})
    return pd.DataFrame(rows, columns=["tool", "installed", "pinned", "reads"])


# Other sources of models (presets) register a function returning rows like reference models' here.
MODEL_LISTERS: list = []


def list_models() -> pd.DataFrame:
    """One row per reference model (and preset): name, input shape, forms, default suite or not, what it pins
    down."""
    rows = [{"model": m.name, "input_shape": "x".join(map(str, m.input_shape)), "forms": ",".join(m.frameworks),
             "default_suite": "yes" if m.name in reference_models.DEFAULT_SUITE else "no",
             "pins_down": m.description} for m in reference_models.MODELS.values()]
    for lister in MODEL_LISTERS:
        rows += list(lister())
    return pd.DataFrame(rows, columns=["model", "input_shape", "forms", "default_suite", "pins_down"])
