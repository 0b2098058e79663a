"""reconcile: which FLOPs is that number?

    import reconcile
    records = reconcile.run(models="lenet", tools="thop,torchstat")     # pandas DataFrame, one row per number
    explained = reconcile.explain(records)                              # each number in the document's terms
    ranked = reconcile.which("resnet50_v15", "4.1 GFLOPs")              # the conventions that print it
    changes = reconcile.check(tools="thop")                             # numbers against the golden snapshots
    drift = reconcile.matrix("thop", "0.0.31.post2005241907,0.1.1.post2209072238", models="lenet")

Every function returns a DataFrame; the command line (reconcile/cli.py) is a thin layer over these.
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


def __getattr__(name: str):
    # `reconcile.which` is the module reconcile/which.py, made callable there: reconcile.which(model, value)
    # returns the ranked DataFrame, and `from reconcile import which` still gives its functions.
    if name == "which":
        import importlib

        return importlib.import_module(f"{__name__}.which")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check(tools=None, models=None, directory=None, update=False, **kwargs):
    """Compare the installed tools' numbers with the golden snapshots: one row per difference (tool, version,
    state, model, layer, quantity, metric, change, text) and one per tool version with no difference;
    `.attrs["report"]` is the reconcile.golden.Report (its .text() and .failed)."""
    from .api import _split
    from .golden import check as _check

    report = _check(_split(tools), models, directory, update, **kwargs)
    return report.frame()


def matrix(tool, versions, models=None, cache_dir=None, timeout=120.0, progress=None):
    """Run several releases of one tool on the models: one row per changed (model, layer, quantity, metric) and
    consecutive pair of versions (columns: reconcile.drift.COLUMNS); `.attrs["records"]` holds every record."""
    from . import api, drift

    drift.tool_distribution(tool)
    wanted = drift.parse_versions(versions) if isinstance(versions, str) else list(versions)
    specs = [job.spec for job in api.plan(models, tool)]
    records, installs = drift.run_matrix(tool, wanted, specs, drift.cache_root(cache_dir), timeout, progress)
    table = drift.drift_rows(records, wanted, drift.irs_for(specs, timeout))
    table.attrs["records"] = records
    table.attrs["installs"] = installs
    return table


__all__ = ["run", "explain", "which", "check", "matrix"]
