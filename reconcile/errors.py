"""Errors caused by the user's input. The CLI prints them as one line and exits with status 2."""
from __future__ import annotations


class UserError(Exception):
    """Bad input: unknown model or tool, missing file, malformed shape or prototxt, a factory that raises."""


class OutOfMemory(UserError):
    """A model's forward (or build) needed more memory than its job may use."""
