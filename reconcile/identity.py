"""One identity per model spec: the name every output shows, the file stem every path uses, and the hash of
everything that defines the model.

A spec is user text: `../x.py:f?input_shape=1,3,8,8`, a 230-character hf: spec, `a b.py:net`. It is never a file
name as it stands. Every path built from a model (the result cache, the IR and explanation caches, which's tool
runs, golden layer files, model pages and charts) goes through `stem`:

- a reference model's name is its own stem (`lenet`): the registry's names are [a-z0-9_] and no other spec can
  carry one (every other display name holds a ':' or a '.', see reconcile.models);
- any other name becomes its first STEM_TEXT_CHARS characters with everything outside [A-Za-z0-9._] turned to `_`,
  then `-` and a hash of the whole text: `a b.py:net` and `a_b.py:net` get distinct stems, a long spec a short
  one, and a stem is a single path component that stays inside the folder it is joined to (`inside`).

`Identity.source_hash` hashes the spec (its text, input shape, factory, keyword arguments) with the content of
the files it names (`source_files`: a reference model's reference_models/*.py, a user's PATH.py, the module a
`module:` spec names, a .prototxt) and, where the model's code comes from an installed distribution, that
distribution's version (transformers for hf:/preset:). Files are read here only when they are regular files of at
most MAX_SOURCE_BYTES (no FIFO, no device, no link to /dev/zero); anything else hashes as its refusal. What a
model's module imports from the user's tree is found in the job that builds it and checked by the cache
(reconcile/cache.py), not guessed here.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, fields
from pathlib import Path

STEM_TEXT_CHARS = 60
HASH_CHARS = 10
MAX_SOURCE_BYTES = 16 * 2 ** 20  # a model definition larger than this is not a source file
_REFERENCE_NAME = re.compile(r"[a-z0-9_]+")
_UNSAFE = re.compile(r"[^A-Za-z0-9._]+")
PROJECT = Path(__file__).resolve().parent.parent


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def is_reference(name: str) -> bool:
    import reference_models

    return name in reference_models.MODELS and bool(_REFERENCE_NAME.fullmatch(name))


def stem(name: str) -> str:
    """A safe, unique file stem for a display name (module docstring)."""
    if is_reference(name):
        return name
    text = _UNSAFE.sub("_", name)[:STEM_TEXT_CHARS].strip("._") or "model"
    return f"{text}-{_digest('name', name)[:HASH_CHARS]}"


def inside(directory: Path, *parts: str) -> Path:
    """directory/part/...: every part a single safe component (no separator, not '.' or '..'), and the folder
    that holds the result, resolved, still under the resolved directory (the file itself may be a symlink: writers
    replace it by a rename, readers check what they read). Raises ValueError otherwise: a path from a spec never
    leaves its directory."""
    for part in parts:
        if not part or part in (".", "..") or "/" in part or "\0" in part or (os.sep != "/" and os.sep in part):
            raise ValueError(f"unsafe path component {part[:80]!r}")
    path = Path(directory).joinpath(*parts)
    if not path.parent.resolve().is_relative_to(Path(directory).resolve()):
        raise ValueError(f"{path} leaves {directory}")
    return path


# ------------------------------------------------------------------------------------------------ reading sources
def read_bounded(path: Path, limit: int = MAX_SOURCE_BYTES) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; OSError for anything else (a FIFO is never opened
    for a blocking read, a device or a larger file is refused)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{path}: not a regular file")
        if info.st_size > limit:
            raise OSError(f"{path}: larger than {limit // 2 ** 20} MB")
        chunks, size = [], 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise OSError(f"{path}: larger than {limit // 2 ** 20} MB")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


UNREADABLE = "unreadable"


def file_hash(path: "Path | str") -> str:
    """sha256 of a source file's content, or UNREADABLE (not a regular file, too large, gone). Memoised on the
    file's size, modification time and inode, so a file edited in this process is read again."""
    try:
        info = os.stat(path)
    except OSError:
        return UNREADABLE
    if not stat.S_ISREG(info.st_mode):
        return UNREADABLE
    return _file_hash(str(path), info.st_size, info.st_mtime_ns, info.st_ino)


@functools.lru_cache(maxsize=8192)
def _file_hash(path: str, size: int, mtime_ns: int, inode: int) -> str:
    try:
        return hashlib.sha256(read_bounded(Path(path))).hexdigest()
    except OSError:
        return UNREADABLE


# ------------------------------------------------------------------------------------------------ imported files
@functools.lru_cache(maxsize=1)
def _covered_dirs() -> tuple[str, ...]:
    """Folders whose files the cache key covers by version (the standard library, installed distributions) or by
    content (the project's own code: reconcile/cache.py fingerprints it)."""
    import site
    import sysconfig

    paths = sysconfig.get_paths()
    dirs = {paths.get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    try:
        dirs.update(site.getsitepackages())
    except AttributeError:
        pass
    dirs.update({str(PROJECT / "reconcile"), str(PROJECT / "conventions")})
    dirs = {d for d in dirs if d}
    # as written and as resolved: most modules' __file__ starts with one of them as it stands (no realpath call)
    return tuple(sorted({os.path.join(d, "") for d in dirs} | {os.path.join(os.path.realpath(d), "") for d in dirs}))


def user_files() -> tuple[tuple[str, str], ...]:
    """(path, sha256) of every module file this process has imported from outside the standard library, the
    installed distributions and the project's code: the user's model file and everything of the user's tree it
    imported (a helper module, a local package). A job calls this after building the model; the cache stores the
    list with its entry and checks every file again before serving it."""
    import sys

    covered = _covered_dirs()
    files = set()
    for module in list(sys.modules.values()):
        origin = getattr(module, "__file__", None)
        if not isinstance(origin, str) or not os.path.isabs(origin) or origin.startswith(covered):
            continue  # (torch.ops and torch.classes say "_ops.py")
        real = os.path.realpath(origin)
        if not real.startswith(covered) and os.path.exists(real):
            files.add(real)
    return tuple((path, file_hash(path)) for path in sorted(files))


def unchanged(files) -> bool:
    """Every (path, sha256) still holds (a file that became unreadable does not)."""
    return all(isinstance(path, str) and digest != UNREADABLE and file_hash(path) == digest
               for path, digest in files)


def _package_files(origin: Path) -> list[Path]:
    """A project package's modules (a reference model's factory imports its siblings, e.g. naming.py); listed
    again when the folder changes."""
    try:
        changed = os.stat(origin.parent).st_mtime_ns
    except OSError:
        return []
    return list(_listing(str(origin.parent), changed))


@functools.lru_cache(maxsize=64)
def _listing(folder: str, changed: int) -> tuple[Path, ...]:
    return tuple(sorted(p for p in Path(folder).glob("*.py") if p.is_file()))


def source_files(spec) -> list[Path]:
    """Files whose content defines the model: the .py files of the project package a factory lives in
    (reference_models/), a user's PATH.py, the module file a `module:` spec names (located, not imported), and
    the prototxt. A built-in module, an in-memory module and an hf:/preset: spec name no file."""
    from .factories import locate_module

    files: list[Path] = []
    for factory in (spec.torch_factory, spec.keras_factory):
        if not factory:
            continue
        module = factory.rpartition(":")[0]
        if module.endswith(".py"):
            files.append(Path(module))
            continue
        found = locate_module(module)
        origin = Path(found.origin) if found is not None and found.has_location and found.origin else None
        if origin is None:
            continue
        if origin.resolve().is_relative_to(PROJECT / "reference_models"):
            files += _package_files(origin)
        else:
            files.append(origin)
    if spec.prototxt:
        files.append(Path(spec.prototxt))
    return sorted(set(files))


@functools.lru_cache(maxsize=None)
def _distribution_of(top_level: str) -> str:
    """'torchvision' -> 'torchvision==0.28.0' (read from the installed metadata, no import); '' when none."""
    from importlib.metadata import PackageNotFoundError, packages_distributions, version

    names = packages_distributions().get(top_level, [])
    out = []
    for name in sorted(set(names)):
        try:
            out.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            pass
    return ",".join(out)


def code_versions(spec) -> list[str]:
    """Versions of the installed code that defines the model: transformers for hf:/preset:, the distribution of a
    `module:` spec's package."""
    out = []
    for factory in (spec.torch_factory, spec.keras_factory):
        module = (factory or "").rpartition(":")[0]
        if not module or module.endswith(".py"):
            continue
        top = module.split(".")[0]
        if top in ("reconcile", "reference_models", "conventions"):
            if module == "reconcile.hf_specs":
                out.append(_distribution_of("transformers") or "transformers==-")
            if module == "reconcile.zoo_specs":  # tv:, timm: (timm builds on torchvision)
                out += [_distribution_of("torchvision") or "torchvision==-", _distribution_of("timm") or "timm==-"]
            continue
        out.append(_distribution_of(top))
    return out


# ------------------------------------------------------------------------------------------------ the identity
def _portable(text: str) -> str:
    """Paths inside this project written relative to it: a reference model has the same hash in every checkout
    (records.csv is byte-identical wherever it is made)."""
    return text.replace(str(PROJECT) + os.sep, "<project>/")


def spec_text(spec) -> str:
    """The spec as canonical text: every field, sorted, paths as text."""
    data = {f.name: getattr(spec, f.name) for f in fields(spec)}
    return _portable(json.dumps(data, sort_keys=True, default=str, ensure_ascii=False))


@dataclass(frozen=True)
class Identity:
    name: str  # what every output calls the model: the spec text (a reference model's name)
    stem: str  # the file stem of every path built for it
    source_hash: str  # the spec with the content of its sources and the versions of the code defining it
    shape: tuple[int, ...]
    complete: bool = True  # every source file was read (a cache entry needs that)

    @property
    def batch(self) -> int:
        return self.shape[0] if self.shape else 1


def identify(spec) -> Identity:
    """The model's identity (module docstring). A source file edited in this process gives a new hash
    (file_hash is memoised on size, modification time and inode)."""
    return _identify(spec_text(spec), spec.name, tuple(spec.input_shape), tuple(source_files(spec)),
                     tuple(code_versions(spec)))


def _identify(text: str, name: str, shape: tuple, files: tuple, versions: tuple) -> Identity:
    hashes = [file_hash(path) for path in files]
    parts = ["spec", text] + [f"{_portable(str(path))}={digest}" for path, digest in zip(files, hashes)] + \
        list(versions)
    return Identity(name, stem(name), _digest(*parts)[:16], shape, UNREADABLE not in hashes)
