"""Errors caused by the user's input. The CLI prints them as one line and exits with status 2."""
from __future__ import annotations

import re
from typing import Optional


class UserError(Exception):
    """Bad input: unknown model or tool, missing file, malformed shape or prototxt, a factory that raises."""


class OutOfMemory(UserError):
    """A model's forward (or build) needed more memory than its job may use."""


# A model whose builder imports a library that is not installed: the reason reads "needs library NAME (...)"
NEEDS_LIBRARY = "needs library"
# transformers' own message for a missing backend (transformers utils/import_utils.py requires_backends and its
# *_IMPORT_ERROR texts: "{0} requires the natten library but it was not found in your environment")
_BACKEND_MESSAGE = re.compile(r"requires the (\S+) library but it was not found")


def missing_library(exc: BaseException) -> Optional[str]:
    """The library an ImportError says is missing (a module not found, or a transformers backend), else None."""
    if not isinstance(exc, ImportError):
        return None
    found = _BACKEND_MESSAGE.search(str(exc))
    if found:
        return found.group(1)
    return exc.name.partition(".")[0] if isinstance(exc, ModuleNotFoundError) and exc.name else None
