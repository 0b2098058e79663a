"""reconcile: which FLOPs is that number?

    import reconcile
    records = reconcile.run(models="lenet", tools="thop,torchstat")     # pandas DataFrame, one row per number
    explained = reconcile.explain(records)                              # each number in the document's terms
"""
from __future__ import annotations


def run(*args, **kwargs):
    from .api import run as _run

    return _run(*args, **kwargs)


run.__doc__ = "See reconcile.api.run."


def explain(*args, **kwargs):
    from .diff import explain as _explain

    return _explain(*args, **kwargs)


explain.__doc__ = "See reconcile.diff.explain."

__all__ = ["run", "explain"]
