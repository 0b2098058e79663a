"""Import shims that let an old tool release run on this Python, applied only inside a job's forked child.

A version-matrix job (reconcile/drift.py) runs e.g. thop 0.0.31.post2005241907, whose thop/utils.py does
`from collections import Iterable`: the ABC aliases in `collections` were removed in Python 3.10. A shim must not
change what the tool counts, only let it import; and the records must say when one was needed, so each shim logs
the names it actually served (a shim applied but never used leaves no trace).

Shims are named, so a `runner.Job` (a frozen, picklable value) can carry them as plain strings.
"""
from __future__ import annotations

import collections
import collections.abc
import importlib
import os
import sys
from contextlib import contextmanager
from typing import Callable, Iterator

_USED: list[str] = []


def _caller(depth: int = 2) -> str:
    """`pkg/file.py` of the code that asked for the shimmed name (for the record's message)."""
    frame = sys._getframe(depth)
    while frame is not None and frame.f_code.co_filename.startswith("<frozen"):
        frame = frame.f_back  # `from collections import X` goes through importlib's frozen _handle_fromlist
    if frame is None:
        return "?"
    path = frame.f_code.co_filename
    return "/".join(path.split(os.sep)[-2:])


def collections_abc_aliases() -> None:
    """Serve `collections.Iterable` & co. from `collections.abc` again (removed from `collections` in Python 3.10,
    bpo-37324), through a module `__getattr__` (PEP 562) so only names a tool really asks for are recorded."""
    if "__getattr__" in vars(collections):
        return

    def __getattr__(name: str):
        if name in collections.abc.__all__:
            entry = f"collections.{name} -> collections.abc.{name} (for {_caller()})"
            if entry not in _USED:
                _USED.append(entry)
            return getattr(collections.abc, name)
        raise AttributeError(f"module 'collections' has no attribute {name!r}")

    collections.__getattr__ = __getattr__


SHIMS: dict[str, Callable[[], None]] = {"collections_abc_aliases": collections_abc_aliases}


def apply(names: tuple[str, ...]) -> None:
    for name in names:
        if name not in SHIMS:
            raise ValueError(f"unknown shim {name!r}; shims: {', '.join(SHIMS)}")
        SHIMS[name]()


def used() -> list[str]:
    return list(_USED)


def note(message: str) -> str:
    """A record's message with the shims this process used appended."""
    if not _USED:
        return message
    text = "shim used on Python {}.{}: {}".format(*sys.version_info[:2], "; ".join(_USED))
    return f"{message}; {text}" if message else text


def top_level_names(folder: str) -> set[str]:
    """Importable top-level names a `pip install --target` folder provides (packages and modules)."""
    names = set()
    for entry in os.scandir(folder):
        if entry.is_dir() and os.path.exists(os.path.join(entry.path, "__init__.py")):
            names.add(entry.name)
        elif entry.is_file() and entry.name.endswith(".py"):
            names.add(entry.name[:-3])
    return names


def put_first(folders: tuple[str, ...]) -> None:
    """In a job's child: `folders` first on sys.path, and any module they provide that the parent had already
    imported (say `thop` from the venv, imported by an earlier in-process caller) forgotten, so the next import
    reads the folder's release."""
    sys.path[:0] = list(folders)
    shadowed = set().union(*(top_level_names(f) for f in folders if os.path.isdir(f))) if folders else set()
    for name in [m for m in sys.modules if m.split(".")[0] in shadowed]:
        del sys.modules[name]
    importlib.invalidate_caches()


@contextmanager
def on_path(folders: tuple[str, ...]) -> Iterator[None]:
    """`folders` first on sys.path for the duration (metadata look-ups without importing the tool)."""
    if not folders:
        yield
        return
    saved = list(sys.path)
    sys.path[:0] = list(folders)
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.path[:] = saved
