"""Loading a model factory named "package.module:function" or "/path/file.py:function" (in job processes), and
locating a module's file without importing it (in the parent). Apart from reconcile/models.py so that front ends
(frontends/keras_ir.py) can load factories without importing the module that imports them."""
from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from importlib.machinery import ModuleSpec
from typing import Any, Callable, Optional

from .errors import UserError


def load_factory(target: str) -> Callable[..., Any]:
    module_text, _, attr = target.rpartition(":")
    if module_text.endswith(".py"):
        path = Path(module_text)
        mod_name = f"_reconcile_user_{path.stem}"
        spec = importlib.util.spec_from_file_location(mod_name, path)
        if spec is None or spec.loader is None:
            raise UserError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise UserError(f"importing {path} failed: {type(exc).__name__}: {exc}") from None
    else:
        module = importlib.import_module(module_text)
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise UserError(f"{module_text} has no callable {attr!r}")
    return factory


def locate_module(name: str) -> Optional[ModuleSpec]:
    """Where `import name` would load the module from, found without running any of its code: each level of the
    dotted name is searched with the meta path finders on its parent's search locations (the finders look at
    files; importlib.util.find_spec would import the parent packages, running their __init__). A level already
    imported is read from sys.modules. None when there is no such module."""
    parts = name.split(".")
    if not all(part.isidentifier() for part in parts):
        return None
    if getattr(sys.modules.get(name), "__spec__", None) is not None:  # os.path: set by os, not a submodule
        return sys.modules[name].__spec__
    search: Optional[list[str]] = None
    found: Optional[ModuleSpec] = None
    for depth in range(1, len(parts) + 1):
        prefix = ".".join(parts[:depth])
        loaded = sys.modules.get(prefix)
        found = getattr(loaded, "__spec__", None) if loaded is not None else None
        if found is None:
            for finder in sys.meta_path:
                find = getattr(finder, "find_spec", None)
                try:
                    found = find(prefix, search) if find is not None else None
                except (ImportError, ValueError, OSError):
                    found = None
                if found is not None:
                    break
        if found is None:
            return None
        if depth < len(parts):
            locations = found.submodule_search_locations
            if locations is None:  # a module, not a package: it has no submodules
                return None
            search = list(locations)
    return found
