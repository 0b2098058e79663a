"""The one cache of `run`, `check` and `which`: a (tool, model) job's records, a model's layer IR and the
explanation of one model's records, kept on disk so a rerun with nothing changed runs no tool and traces nothing.

Where: $RECONCILE_CACHE_DIR, else $XDG_CACHE_HOME/reconcile, else ~/.cache/reconcile (`cache_root`); never the
working directory. Layout: results/<tool>/<stem>-<key>.json, layer_ir/<framework>/<stem>-<key>.json,
explanations/<stem>-<key>.json, specs/hf/<stem>-<key>.json (an hf:/preset: spec as resolved: its built model's
facts), where <stem> is the model's safe file stem (reconcile.identity) and <key> hashes everything the entry
depends on:
  - the tool id and version (a new pin re-runs exactly that tool's jobs);
  - the model's identity: the spec (text, input shape with its batch, factory, keyword arguments) with the
    content of the files it names and the version of the installed code defining it (transformers for hf:);
  - the versions of Python, torch, transformers, TensorFlow, Keras, numpy and pandas, the project's version, and
    the content of the code between a tool's printout and the records (RECORD_CODE).
The files the model's module imported from the user's tree (a helper module, a local package) are only known in
the job that builds the model: the job reports them (identity.user_files) with their hashes, the entry keeps the
list, and a load checks every one of them again; a changed helper is a miss.

Data, not code: an entry is JSON (records as rows; the IR and explanations as their dataclasses' fields), preceded
by an HMAC-SHA256 of the JSON under this cache's own random key (`<root>/.key`, created with mode 0600). Nothing
is unpickled and nothing is served unless its MAC, its key and its imports check out: any unreadable, truncated,
altered or foreign entry is a miss, and the job's fresh result overwrites it (`--fresh` re-runs the tools anyway).

Not cached: jobs of the version matrix (they bring their own install), a user's in-memory nn.Module (no source
to hash), a job that timed out, died, ran out of memory or was not run because its model could not be traced
(they say nothing lasting about the tool), and a model whose sources could not be read. The cache never changes a
report: a hit returns the very records the job produced (tests/test_cache.py compares files cold and warm).
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import json
import math
import numbers
import os
import platform
import secrets
import stat
import tempfile
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from . import identity
from .records import ERROR, MODEL_LEVEL, Record

CACHE_ENV = "RECONCILE_CACHE_DIR"
FORMAT = 2  # bump when the file layout changes
ROOT = Path(__file__).resolve().parent.parent
# The code between a tool's printout and the records (adapters parse, front ends name the layers and kinds,
# conventions/ir.py defines the kinds, the runner and jobs write the status rows, identity the stamps). Reports and
# explanations are not here: they are recomputed from the records on every run.
RECORD_CODE = ("reconcile/adapters", "reconcile/frontends", "conventions", "reconcile/models.py",
               "reconcile/spec.py", "reconcile/hf_specs.py", "reconcile/factories.py", "reconcile/records.py",
               "reconcile/runner.py", "reconcile/jobs.py", "reconcile/memory.py", "reconcile/identity.py",
               "reconcile/shims.py")
FRAMEWORKS = ("torch", "transformers", "tensorflow", "tensorflow-cpu", "keras", "numpy", "pandas")
# the runner's model-level rows for a job that did not finish, or was not run (reconcile/runner.py)
TRANSIENT = ("timed out after", "the tool's process died", "not run:")
OUT_OF_MEMORY = "ran out of memory"  # under the cap of that run: another --memory may give numbers
KEY_FILE = ".key"
KEY_BYTES = 32
MAX_ENTRY_BYTES = 512 * 2 ** 20


def cache_root() -> Path:
    """$RECONCILE_CACHE_DIR, else $XDG_CACHE_HOME/reconcile (an absolute XDG path only, as the XDG spec says),
    else ~/.cache/reconcile."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "reconcile"
    return Path(os.path.expanduser("~")) / ".cache" / "reconcile"


cache_dir = cache_root  # the name tests and callers used


# ------------------------------------------------------------------------------------------------ fingerprints
def _versions(dists) -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for dist in dists:
        try:
            out.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            out.append(f"{dist} -")
    return "; ".join(out)


def _hash_code(entries) -> "hashlib._Hash":
    digest = hashlib.sha256()
    for entry in entries:
        path = ROOT / entry
        for file in (sorted(path.rglob("*.py")) if path.is_dir() else [path]):
            digest.update(str(file.relative_to(ROOT)).encode())
            digest.update(file.read_bytes())
    return digest


@functools.lru_cache(maxsize=None)
def code_fingerprint() -> str:
    """RECORD_CODE's .py files, the project version, Python and the framework versions (once per process)."""
    digest = _hash_code(RECORD_CODE)
    digest.update(f"format {FORMAT} python {platform.python_version()} {_versions(('reconcile',) + FRAMEWORKS)}"
                  .encode())
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def project_fingerprint() -> str:
    """Every .py of reconcile/ and conventions/ with the versions above: what an explanation can depend on,
    however the explaining code is split into modules."""
    digest = _hash_code(("reconcile", "conventions"))
    digest.update(code_fingerprint().encode())
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def tool_version(tool: str) -> str:
    from . import adapters

    return adapters.get(tool).version()


def spec_fingerprint(spec) -> str:
    """16 hex digits that change when the model spec or the content of its source files does."""
    return identity.identify(spec).source_hash


def _in_memory(spec) -> bool:
    """A user's nn.Module handed to reconcile.api.run: no source file says what it is."""
    return (spec.torch_factory or "").startswith("reconcile.api:_in_memory_")


def _place(root: Optional[Path], spec, kind: str, folder: str, *parts: str) -> Optional[tuple[Path, str]]:
    """(entry path, key) of an entry about `spec`: <root>/<kind>/<folder>/<stem>-<key>.json, the key hashing
    `parts`, the model's source hash and code_fingerprint(). None when the model cannot be keyed (an in-memory
    module, a source file that could not be read) or a folder of the cache leads elsewhere (a symlink)."""
    if _in_memory(spec):
        return None
    ident = identity.identify(spec)
    if not ident.complete:
        return None
    key = hashlib.sha256(" ".join((kind, folder) + parts + (ident.source_hash, code_fingerprint())).encode()) \
        .hexdigest()
    try:
        return identity.inside(Path(root or cache_root()), kind, folder, f"{ident.stem}-{key[:24]}.json"), key
    except ValueError:
        return None


def result_key(spec, tool: str, version: str) -> Optional[str]:
    """The key a (tool, version, model) job's records are kept under: the sweep store keys its jobs by it too
    (reconcile/store.py). None when the model cannot be keyed (an in-memory module, unreadable sources)."""
    place = _place(Path("/"), spec, "results", tool, version)
    return place[1] if place else None


def _records_place(job, root: Optional[Path]) -> Optional[tuple[Path, str]]:
    if job.extra_path or job.shims:  # a matrix job brings its own install
        return None
    return _place(root, job.spec, "results", job.tool, tool_version(job.tool))


# ------------------------------------------------------------------------------------------------ signed entries
def _secret(root: Path) -> Optional[bytes]:
    """This cache's MAC key: <root>/.key, KEY_BYTES random bytes, a regular file of ours with mode 0600. A
    missing, foreign or damaged key is replaced (its entries then verify under no key: misses, rewritten)."""
    path = root / KEY_FILE
    key = _read_key(path)
    if key is not None:
        return key
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=root, prefix=".key.")  # mode 0600
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(KEY_BYTES))
        os.replace(tmp, path)
    except OSError:
        return None  # a cache that cannot be written costs speed, not the run
    return _read_key(path)  # the one on disk: another process may have replaced it at the same moment


def _read_key(path: Path) -> Optional[bytes]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            info = os.fstat(fd)
            data = os.read(fd, KEY_BYTES + 1)
        finally:
            os.close(fd)
    except OSError:
        return None
    if stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid() and not info.st_mode & 0o077 \
            and len(data) == KEY_BYTES:
        return data
    return None


def _mac(secret: bytes, body: bytes) -> bytes:
    return hmac.new(secret, body, hashlib.sha256).hexdigest().encode()


def seal(root: Path, payload: dict) -> Optional[bytes]:
    """An entry's bytes: the MAC of the JSON, a newline, the JSON."""
    secret = _secret(root)
    if secret is None:
        return None
    body = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
    return _mac(secret, body) + b"\n" + body


def unseal(root: Path, path: Path) -> Optional[dict]:
    """The JSON payload of an entry whose MAC checks out under this cache's key; None for anything else."""
    try:
        data = identity.read_bounded(path, MAX_ENTRY_BYTES)
        mac, sep, body = data.partition(b"\n")
        secret = _secret(root)
        if not sep or secret is None or not hmac.compare_digest(mac, _mac(secret, body)):
            return None
        payload = json.loads(body)
    except (OSError, ValueError, RecursionError):
        return None
    return payload if isinstance(payload, dict) and payload.get("format") == FORMAT else None


def _read(root: Path, path: Path, key: str) -> Optional[dict]:
    """A verified payload for `key` whose recorded imports are unchanged."""
    payload = unseal(root, path)
    if payload is None or payload.get("key") != key:
        return None
    imports = payload.get("imports")
    if not isinstance(imports, list) or not all(isinstance(i, list) and len(i) == 2 for i in imports):
        return None
    return payload if identity.unchanged(imports) else None


def _write(root: Path, path: Path, key: str, data: Any, imports, about: Optional[dict] = None) -> bool:
    if imports is None or any(digest == identity.UNREADABLE for _, digest in imports):
        return False  # what the model imported is unknown: nothing to check a later load against
    try:
        sealed = seal(root, {"format": FORMAT, "key": key, "about": about or {},
                             "imports": [list(i) for i in imports], "data": data})
    except (TypeError, ValueError):
        return False  # a value JSON cannot hold (checked again by the callers' round trips)
    if sealed is None:
        return False
    return _write_atomic(path, sealed)


# ------------------------------------------------------------------------------------------------ job records
def path_of(job, root: Optional[Path] = None) -> Optional[Path]:
    """Where the job's records are kept (None: the job is not cached)."""
    place = _records_place(job, root)
    return place[0] if place else None


def transient(records: list[Record]) -> bool:
    """A job that timed out, died, ran out of memory or was not run: nothing to keep."""
    return any(r.layer == MODEL_LEVEL and r.status == ERROR
               and (r.message.startswith(TRANSIENT) or OUT_OF_MEMORY in r.message) for r in records)


_RECORD_FIELDS = [f.name for f in fields(Record)]


def _record(row) -> Record:
    if not isinstance(row, list) or len(row) != len(_RECORD_FIELDS):
        raise TypeError("not a record row")
    values = dict(zip(_RECORD_FIELDS, row))
    for name in _RECORD_FIELDS:
        if name in ("value", "batch"):
            if values[name] is not None and (isinstance(values[name], bool)
                                             or not isinstance(values[name], (int, float))):
                raise TypeError(f"{name} is not a number")
        elif not isinstance(values[name], str):
            raise TypeError(f"{name} is not text")
    return Record(**values)


_ENTRY_ERRORS = (OSError, ValueError, KeyError, TypeError)  # an entry that cannot be read or does not verify


def _cached(place: Optional[tuple[Path, str]], root: Optional[Path], convert: Callable, errors=_ENTRY_ERRORS):
    """convert(the entry's data) for the entry at `place`, or None: no place, no entry, one that does not verify, or
    data `convert` refuses (None or one of `errors`)."""
    if place is None:
        return None
    try:
        payload = _read(Path(root or cache_root()), *place)
        return None if payload is None else convert(payload["data"])
    except errors:
        return None


def load(job, root: Optional[Path] = None) -> Optional[list[Record]]:
    """The job's cached records, or None (not cacheable, not cached, or an entry that does not verify)."""
    return _cached(_records_place(job, root), root, lambda rows: [_record(row) for row in rows])


def store(job, records: list[Record], imports=None, root: Optional[Path] = None) -> bool:
    """Keep the job's records with the user files its process imported (`imports`: (path, sha256) pairs from the
    job; None, unknown, stores nothing). False when the job is not to be cached."""
    place = _records_place(job, root)
    if place is None or transient(records):
        return False
    rows = [[getattr(r, name) for name in _RECORD_FIELDS] for r in records]
    about = {"tool": job.tool, "tool_version": tool_version(job.tool), "model": job.spec.name,
             "input_shape": list(job.spec.input_shape)}
    return _write(Path(root or cache_root()), *place, rows, imports, about)


# ------------------------------------------------------------------------------------------------ data codec
def _dataclasses() -> dict[str, type]:
    from conventions.ir import Layer, Model

    return {"Layer": Layer, "Model": Model}


def encode(value: Any) -> Any:
    """Plain JSON for the IR's and the explanations' values, tagged where JSON has no type of its own (tuples,
    dicts with any keys, non-finite floats, the IR's dataclasses by name from a fixed list). TypeError for
    anything else."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else {"f": repr(number)}
    if isinstance(value, tuple):
        return {"t": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {"d": [[encode(k), encode(v)] for k, v in value.items()]}
    if is_dataclass(value) and _dataclasses().get(type(value).__name__) is type(value):
        return {"c": type(value).__name__, "v": {f.name: encode(getattr(value, f.name)) for f in fields(value)}}
    raise TypeError(f"cannot keep a {type(value).__name__} in the cache")


def decode(value: Any) -> Any:
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"t"} and isinstance(value["t"], list):
        return tuple(decode(v) for v in value["t"])
    if set(value) == {"d"} and isinstance(value["d"], list):
        return {decode(k): decode(v) for k, v in value["d"]}
    if set(value) == {"f"} and value["f"] in ("nan", "inf", "-inf"):
        return float(value["f"])
    if set(value) == {"c", "v"} and value["c"] in _dataclasses() and isinstance(value["v"], dict):
        return _dataclasses()[value["c"]](**{k: decode(v) for k, v in value["v"].items()})
    raise TypeError("not an encoded value")


def _round_trip(value: Any) -> Optional[Any]:
    """The encoded value if decoding it gives back a value of the same encoding (NaN included), else None: it is
    not kept."""
    try:
        encoded = encode(value)
        text = json.dumps(encoded, sort_keys=True, allow_nan=False)
        return encoded if json.dumps(encode(decode(json.loads(text))), sort_keys=True) == text else None
    except (TypeError, ValueError, RecursionError):
        return None


# ------------------------------------------------------------------------------------------------ layer IRs
def stored_ir(spec, framework: str, root: Optional[Path] = None):
    """The layer IR kept on disk for this model, or None: reading it runs no model code."""
    from conventions.ir import Model

    def model(data):
        decoded = decode(data)
        return decoded if isinstance(decoded, Model) else None

    return _cached(_place(root, spec, "layer_ir", framework), root, model, _ENTRY_ERRORS + (AttributeError,))


def store_ir(spec, framework: str, ir, imports, root: Optional[Path] = None) -> bool:
    place = _place(root, spec, "layer_ir", framework)
    encoded = _round_trip(ir) if place is not None else None
    if encoded is None:
        return False
    return _write(Path(root or cache_root()), *place, encoded, imports, {"model": spec.name, "framework": framework})


def layer_ir(spec, framework: str):
    """reconcile.models.layer_ir, kept on disk under the model's and the front ends' fingerprints (call it where
    model code may run: a job process; it records what the model imported after tracing). Errors (a UserError
    for a bad shape) are raised as by layer_ir and never stored."""
    from .models import cached_ir, layer_ir as trace

    stored = stored_ir(spec, framework)
    if stored is not None:
        return stored
    if cached_ir(spec, framework) is not None:  # traced earlier in this worker: this process imported nothing
        return cached_ir(spec, framework)
    ir = trace(spec, framework)
    store_ir(spec, framework, ir, identity.user_files())
    return ir


# ------------------------------------------------------------------------------------------------ resolved hf specs
_SPEC_FIELDS = ("name", "input_shape", "torch_factory", "factory_kwargs", "token_model", "config", "meta", "note")
PRESETS = "reference_models/presets.py"  # what a preset: name stands for


def _spec_place(root: Optional[Path], request: tuple) -> Optional[tuple[Path, str]]:
    """An hf:/preset: spec as resolved (hf_specs.from_transformers): keyed by the request (spec text, batch,
    sequence length, input shape), the presets' table and code_fingerprint() (the resolving code and the
    transformers and torch versions)."""
    try:
        presets = hashlib.sha256((ROOT / PRESETS).read_bytes()).hexdigest()
        text = json.dumps(encode(request), sort_keys=True)
    except (OSError, TypeError, ValueError):
        return None
    key = hashlib.sha256(" ".join(("spec", text, presets, code_fingerprint())).encode()).hexdigest()
    stem = identity.stem(str(request[0]))
    try:
        return identity.inside(Path(root or cache_root()), "specs", "hf", f"{stem}-{key[:24]}.json"), key
    except ValueError:
        return None


def stored_spec(request: tuple, root: Optional[Path] = None):
    """The ModelSpec an hf:/preset: request resolved to, kept on disk (no job needed), or None."""
    from .spec import ModelSpec

    def spec(data):
        fields_ = decode(data)
        return ModelSpec(**fields_) if isinstance(fields_, dict) and set(fields_) == set(_SPEC_FIELDS) else None

    return _cached(_spec_place(root, request), root, spec)


def store_spec(request: tuple, spec, root: Optional[Path] = None) -> bool:
    place = _spec_place(root, request)
    encoded = _round_trip({name: getattr(spec, name) for name in _SPEC_FIELDS}) if place is not None else None
    if encoded is None:
        return False
    return _write(Path(root or cache_root()), *place, encoded, [], {"model": spec.name})


# ------------------------------------------------------------------------------------------------ explanations
def explained(records, ir, explain_model: Callable, root: Optional[Path] = None) -> list[dict]:
    """explain_model(records, ir) (one model's rows of reconcile.diff), kept on disk: a warm run's records and
    IRs are the same, so are their explanations. The key hashes the records as CSV text (with each value's type:
    1 and 1.0 print alike), the IR's encoding and project_fingerprint(); anything that differs is a miss."""
    ir_text = _round_trip(ir)
    if ir_text is None:
        return explain_model(records, ir)
    digest = hashlib.sha256(f"explained {project_fingerprint()}".encode())
    digest.update(records.to_csv(index=False).encode())
    digest.update(repr([type(v).__name__ for v in records["value"]]).encode())
    digest.update(json.dumps(ir_text, sort_keys=True).encode())
    key = digest.hexdigest()
    root = Path(root or cache_root())
    try:
        path = identity.inside(root, "explanations", f"{identity.stem(ir.name)}-{key[:24]}.json")
    except ValueError:
        return explain_model(records, ir)
    payload = _read(root, path, key)
    if payload is not None:
        try:
            rows = decode(payload["data"])
            if isinstance(rows, list) and all(isinstance(row, dict) for row in rows):
                return rows
        except (KeyError, TypeError, ValueError, AttributeError):
            pass
    rows = explain_model(records, ir)
    encoded = _round_trip(rows)
    if encoded is not None:
        _write(root, path, key, encoded, ())
    return rows


def _write_atomic(path: Path, data: bytes) -> bool:
    """Via a temp file and a rename: a concurrent reader sees the old entry or the new one, never half. A cache
    that cannot be written (read-only folder, full disk) costs speed, not the run: the error is dropped."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError:
        return False
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
        return True
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if not isinstance(exc, OSError):
            raise
        return False


# ------------------------------------------------------------------------------------------------ sweep rows
# what a sweep row depends on: the record code, the sweep's own and, for torchvision and timm, their spec module
SWEEP_CODE = RECORD_CODE + ("reconcile/sweep.py", "reconcile/zoo_import.py")
ZOO_CODE = ("reconcile/zoo_specs.py",)


@functools.lru_cache(maxsize=None)
def sweep_fingerprint(zoo: bool = True) -> str:
    digest = _hash_code(SWEEP_CODE + (ZOO_CODE if zoo else ()))
    digest.update(code_fingerprint().encode())
    return digest.hexdigest()[:16]


def _sweep_place(job_key: str, versions: str, root: Optional[Path]) -> Optional[tuple[Path, str]]:
    """(entry path, key) of one `reconcile sweep` job's rows: keyed by the job's key (registry, model, sizes,
    tools), the versions of the registry's libraries and the code a row depends on (SWEEP_CODE)."""
    zoo = not job_key.startswith("hf/")
    key = hashlib.sha256(" ".join(("sweep", job_key, versions, sweep_fingerprint(zoo))).encode()).hexdigest()
    try:
        return identity.inside(Path(root or cache_root()), "sweep", f"{identity.stem(job_key)}-{key[:24]}.json"), key
    except ValueError:
        return None


def sweep_rows(job_key: str, versions: str, root: Optional[Path] = None) -> Optional[list[dict]]:
    """A sweep job's cached rows (plain dicts), or None."""
    return _cached(_sweep_place(job_key, versions, root), root,
                   lambda rows: rows if isinstance(rows, list) and all(isinstance(r, dict) for r in rows) else None)


def store_sweep_rows(job_key: str, versions: str, rows: list[dict], root: Optional[Path] = None) -> bool:
    place = _sweep_place(job_key, versions, root)
    if place is None:
        return False
    return _write(Path(root or cache_root()), *place, rows, (), {"sweep": job_key})
