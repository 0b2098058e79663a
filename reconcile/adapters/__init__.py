"""Adapters: one module per counting tool, each turning that tool's own output into Records.

Every adapter module defines:
    TOOL         the tool id used in records.csv (design.md "Tool ids")
    FRAMEWORK    the model form it reads: "torch", "keras" or "caffe" ("ir" for the document's formulas)
    WORKER       the process group that runs it: "torch" (forked from a worker that imported torch once),
                 "tf" (the one TensorFlow worker), or "pure" (no framework import)
    version() -> str                   the tool's version as recorded in records.csv
    unavailable() -> Optional[str]     why it cannot run here (not installed), else None
    count(spec, emit) -> list[Record]  run the tool on one model; raise on failure (the runner records it)
Adapters know nothing of reports, the diff engine, or other tools.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import UserError

# Order = report order.
TOOLS = ("document", "thop", "torchstat", "torchsummary", "tf_profiler", "netscope")
TOOLS += ("fvcore", "ptflops_pytorch", "ptflops_aten", "torchinfo", "torch_flop_counter", "ultralytics_thop",
          "calflops", "deepspeed")


def get(tool: str) -> ModuleType:
    if tool not in TOOLS:
        from ..names import did_you_mean

        raise UserError(f"unknown tool {tool!r}{did_you_mean(tool, TOOLS)}; tools: {', '.join(TOOLS)}")
    return importlib.import_module(f"{__name__}.{tool}")


def distribution_version(distribution: str) -> str:
    """The installed version in PEP 440 normal form: thop's metadata says "0.1.1-2209072238", pip and
    constraints.txt say "0.1.1.post2209072238"; both are the same release."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.version import InvalidVersion, Version

    try:
        raw = version(distribution)
    except PackageNotFoundError:
        return "not installed"
    try:
        return str(Version(raw))
    except InvalidVersion:
        return raw


def layer_kinds(spec) -> dict[str, str]:
    """Canonical layer kinds by torch qualified name, from the layer IR (the names module-walking tools use)."""
    from ..models import layer_ir

    return {layer.name: layer.kind for layer in layer_ir(spec, "torch").layers}


def missing(distribution: str, module: str) -> "str | None":
    import importlib.util

    if importlib.util.find_spec(module) is None:
        return f"{distribution} is not installed (pip install -c constraints.txt {distribution})"
    return None
