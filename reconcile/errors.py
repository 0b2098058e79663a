"""Errors caused by the user's input. The CLI prints them as one line and exits with status 2."""


class UserError(Exception):
    """Bad input: unknown model or tool, missing file, malformed shape or prototxt, a factory that raises."""
