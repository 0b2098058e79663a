"""Loading a model factory named "package.module:function" or "/path/file.py:function". Apart from
reconcile/models.py so that front ends (frontends/keras_ir.py) can load factories without importing the module
that imports them."""
from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any, Callable

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
