"""The result cache: a (tool, model) job's records kept on disk, so a rerun with nothing changed runs no tool.

A job's records are stored under a key made of everything they can depend on:
  - the tool id and the tool's version (a new pin in constraints.txt re-runs exactly that tool's jobs);
  - the model spec (name, input shape with its batch, factories, prototxt path, aliases) and the content of the
    files that define the model (`source_files`: a reference model's reference_models/*.py, a user's PATH.py,
    a .prototxt);
  - the project version, the Python / torch / TensorFlow / Keras versions, and the content of the code that
    turns a tool's output into records (`RECORD_CODE`), so editing an adapter or a front end re-runs its jobs.
One JSON file per job: <dir>/<tool>/<model>-<key>.json, dir = $RECONCILE_CACHE_DIR or .cache/results.
The layer IRs the parent process computes terms on (diff.canonical_ir: explanations, the report's published
numbers, `check`, `formulas`) are kept the same way (`layer_ir`, <dir>/layer_ir/<framework>/<model>-<key>.pickle):
tracing ResNet-50 or VGG-16 costs seconds, and a warm run needs no framework import at all. `--fresh` re-runs the
tools, not the tracing: an IR is a function of the keyed sources and code alone. The explanation of one model's
records (diff.explain_model) is kept too (`explained`), keyed by the records, the IR and the whole project's code.
Not cached: jobs of the version matrix (they bring their own install), a user's in-memory nn.Module (no source
to hash), and a job that timed out or whose process died (says nothing lasting about the tool).
The cache never changes a report: a hit returns the very records the job produced (tests/test_cache.py checks
records.csv and report.md are byte-identical cold and warm).
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import pickle
import re
import platform
import tempfile
from pathlib import Path
from typing import Optional

from .records import ERROR, MODEL_LEVEL, Record

CACHE_ENV = "RECONCILE_CACHE_DIR"
DEFAULT_DIR = Path(".cache") / "results"
FORMAT = 1  # bump when the file layout changes
ROOT = Path(__file__).resolve().parent.parent
# The code between a tool's printout and the records (adapters parse, front ends name the layers and kinds,
# conventions/ir.py defines the kinds, the runner writes the status rows). Reports and explanations are not here:
# they are recomputed from the records on every run.
RECORD_CODE = ("reconcile/adapters", "reconcile/frontends", "conventions", "reconcile/models.py",
               "reconcile/records.py", "reconcile/runner.py", "reconcile/shims.py")
FRAMEWORKS = ("torch", "tensorflow", "tensorflow-cpu", "keras", "numpy")
# the runner's model-level rows for a job that did not finish (reconcile/runner.py `_timeout_rows`, `_run_forked`)
TRANSIENT = ("timed out after", "the tool's process died")


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_DIR)


def source_files(spec) -> list[Path]:
    """Files whose content defines the model: every .py beside a factory's module (the factory imports its
    siblings, e.g. reference_models/naming.py), a user's PATH.py, and the prototxt."""
    files: list[Path] = []
    for factory in (spec.torch_factory, spec.keras_factory):
        if not factory:
            continue
        module = factory.rpartition(":")[0]
        if module.endswith(".py"):
            files.append(Path(module))
            continue
        found = importlib.util.find_spec(module)
        if found is not None and found.origin:
            files += sorted(Path(found.origin).parent.glob("*.py"))
    if spec.prototxt:
        files.append(Path(spec.prototxt))
    return sorted(set(files))


def spec_fingerprint(spec) -> str:
    """16 hex digits that change when the model spec or the content of its source files does."""
    digest = hashlib.sha256(repr((spec.name, spec.input_shape, spec.torch_factory, spec.keras_factory,
                                  sorted(spec.aliases.items()))).encode())
    for path in source_files(spec):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def code_fingerprint() -> str:
    """Hash of RECORD_CODE's .py files, the project version and the framework versions (once per process)."""
    from importlib.metadata import PackageNotFoundError, version

    digest = hashlib.sha256(f"format {FORMAT} python {platform.python_version()}".encode())
    for dist in ("reconcile",) + FRAMEWORKS:
        try:
            digest.update(f" {dist} {version(dist)}".encode())
        except PackageNotFoundError:
            digest.update(f" {dist} -".encode())
    for entry in RECORD_CODE:
        path = ROOT / entry
        for file in (sorted(path.rglob("*.py")) if path.is_dir() else [path]):
            digest.update(str(file.relative_to(ROOT)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def tool_version(tool: str) -> str:
    from . import adapters

    return adapters.get(tool).version()


def _in_memory(spec) -> bool:
    """A user's nn.Module handed to reconcile.api.run: no source file says what it is."""
    return (spec.torch_factory or "").startswith("reconcile.api:_in_memory_")


def cacheable(job) -> bool:
    return not (job.extra_path or job.shims or _in_memory(job.spec))


def path_of(job) -> Path:
    key = hashlib.sha256(" ".join((job.tool, tool_version(job.tool), spec_fingerprint(job.spec),
                                   code_fingerprint())).encode()).hexdigest()[:20]
    return cache_dir() / job.tool / f"{job.spec.name}-{key}.json"


def transient(records: list[Record]) -> bool:
    """A job that timed out or whose process died: nothing to keep."""
    return any(r.layer == MODEL_LEVEL and r.status == ERROR and r.message.startswith(TRANSIENT) for r in records)


def load(job) -> Optional[list[Record]]:
    """The job's cached records, or None (not cacheable, not cached, or an unreadable file)."""
    if not cacheable(job):
        return None
    try:
        stored = json.loads(path_of(job).read_text(encoding="utf-8"))
        return [Record(*row) for row in stored["records"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store(job, records: list[Record]) -> bool:
    """Keep the job's records (written atomically); False when the job is not to be cached."""
    if not cacheable(job) or transient(records):
        return False
    path = path_of(job)
    about = {"tool": job.tool, "tool_version": tool_version(job.tool), "model": job.spec.name,
             "input_shape": list(job.spec.input_shape), "spec": spec_fingerprint(job.spec),
             "code": code_fingerprint()}
    rows = [[getattr(r, name) for name in Record.__dataclass_fields__] for r in records]
    _write_atomic(path, json.dumps({"key": about, "records": rows}, separators=(",", ":")).encode())
    return True


def _ir_path(spec, framework: str) -> Path:
    key = hashlib.sha256(" ".join((framework, spec_fingerprint(spec), code_fingerprint())).encode()).hexdigest()
    return cache_dir() / "layer_ir" / framework / f"{re.sub(r'[^A-Za-z0-9._-]', '_', spec.name)}-{key[:20]}.pickle"


def stored_ir(spec, framework: str):
    """The layer IR kept on disk for this model, or None: reading it runs no model code."""
    if _in_memory(spec):
        return None
    try:
        return pickle.loads(_ir_path(spec, framework).read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError):
        return None  # not cached, or written by other code


def layer_ir(spec, framework: str):
    """reconcile.models.layer_ir, kept on disk under the model's and the front ends' fingerprints (call it where
    model code may run: a job process). Errors (a UserError for a bad shape) are raised as by layer_ir and never
    stored."""
    from .models import layer_ir as trace

    stored = stored_ir(spec, framework)
    if stored is not None:
        return stored
    ir = trace(spec, framework)
    if not _in_memory(spec):
        _write_atomic(_ir_path(spec, framework), pickle.dumps(ir, protocol=pickle.HIGHEST_PROTOCOL))
    return ir


@functools.lru_cache(maxsize=None)
def project_fingerprint() -> str:
    """Hash of every .py of reconcile/ and conventions/ (and the pandas version): what an explanation can
    depend on, however the explaining code is split into modules."""
    from importlib.metadata import version

    digest = hashlib.sha256(f"format {FORMAT} pandas {version('pandas')}".encode())
    for package in ("reconcile", "conventions"):
        for file in sorted((ROOT / package).rglob("*.py")):
            digest.update(str(file.relative_to(ROOT)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def explained(records, ir, explain_model) -> list[dict]:
    """explain_model(records, ir) (one model's rows of reconcile.diff), kept on disk: a warm run's records and
    IRs are the same, so are their explanations. The key hashes the records as CSV text, the pickled IR and
    project_fingerprint(); anything that differs is a miss, never a wrong hit."""
    digest = hashlib.sha256(project_fingerprint().encode())
    digest.update(records.to_csv(index=False).encode())
    digest.update(repr([type(v).__name__ for v in records["value"]]).encode())  # 1 and 1.0 print alike
    digest.update(pickle.dumps(ir, protocol=pickle.HIGHEST_PROTOCOL))
    path = cache_dir() / "explanations" / f"{ir.name}-{digest.hexdigest()[:20]}.pickle"
    try:
        return pickle.loads(path.read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError):
        pass
    rows = explain_model(records, ir)
    _write_atomic(path, pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL))
    return rows


def _write_atomic(path: Path, data: bytes) -> None:
    """Via a temp file and a rename: a concurrent reader sees the old entry or the new one, never half. A cache
    that cannot be written (read-only folder, full disk) costs speed, not the run: the error is dropped."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException as exc:
        os.unlink(tmp)
        if not isinstance(exc, OSError):
            raise
