"""What each tool counts, per metric, layer kind and tool version, as a combination of basis terms.

A declarative table (in the spirit of fvcore's `_DEFAULT_SUPPORTED_OPS`), one module per tool; every entry cites
the tool's source file and function it encodes. The diff engine never trusts an entry blindly: it evaluates the
combination on the layer's terms and reports the residual; an entry that does not fit falls back to a bounded
search. Entries are keyed by version ranges, so explanations stay right for old releases.
"""
from __future__ import annotations

import importlib
import re
from typing import Optional

from ..ir import Layer
from . import base
from .base import Convention, kind_key, round_significant

TOOL_MODULES = ("document", "thop", "torchstat", "torchsummary", "tf_profiler", "netscope")
TOOL_MODULES += ("fvcore", "ptflops", "torchinfo", "torch_flop_counter", "ultralytics_thop", "calflops", "deepspeed")

CATALOGUE: tuple[Convention, ...] = tuple(
    entry for name in TOOL_MODULES for entry in importlib.import_module(f"{__name__}.{name}").CONVENTIONS)

__all__ = ["CATALOGUE", "Convention", "MECHANISMS", "entries", "kind_key", "lookup", "lookup_all", "in_range",
           "round_significant"]

# How each tool observes the model (the adapters' docstrings cite the tool functions behind each).
MECHANISMS = {
    "document": base.FORMULAS,
    "thop": base.HOOKS,  # thop/profile.py profile: register_forward_hook per leaf module type
    "torchstat": base.HOOKS,  # torchstat/model_hook.py ModelHook: wraps nn.Module.__call__ of leaf modules
    "torchsummary": base.HOOKS,  # torchsummary/torchsummary.py summary: register_forward_hook
    "tf_profiler": base.TF_GRAPH,  # tf.compat.v1.profiler over the graph's ops
    "netscope": base.PROTOTXT,
    "fvcore": base.JIT_TRACE,  # fvcore/nn/jit_analysis.py: torch.jit._get_trace_graph
    "ptflops_pytorch": base.HOOKS_AND_PATCHES,  # ptflops/pytorch_engine.py: hooks + patch_functional
    "ptflops_aten": base.DISPATCH,  # ptflops/aten_engine.py: a TorchDispatchMode
    "torchinfo": base.HOOKS,  # torchinfo/torchinfo.py: register_forward_pre_hook / register_forward_hook
    "torch_flop_counter": base.DISPATCH,  # torch/utils/flop_counter.py FlopCounterMode
    "ultralytics_thop": base.HOOKS,  # thop/profile.py (ultralytics fork): register_forward_hook
    "calflops": base.HOOKS_AND_PATCHES,  # calflops/pytorch_ops.py _patch_functionals + module hooks
    "deepspeed": base.HOOKS_AND_PATCHES,  # deepspeed/profiling/flops_profiler/profiler.py _patch_functionals
}


def in_range(version: str, bounds: tuple[str, str]) -> bool:
    """PEP 440 comparison, post-releases included ("0.1.1.post2209072238" is in ["0.1", "")): thop's builds
    share release numbers across convention changes (0.0.5.post2206100352 counts the conv bias, .post2206102148
    does not). Versions that are not PEP 440 (Netscope commit ids) must equal the lower bound."""
    from packaging.version import InvalidVersion, Version

    low, high = bounds
    if not low and not high:
        return True
    try:
        current = Version(version)
        if low and current < Version(low):
            return False
        return not (high and current >= Version(high))
    except InvalidVersion:
        return version == low


def metric_matches(pattern: str, metric: str) -> bool:
    """"*/Conv2D" matches any op of that type, TF's numbered repeats included (`ln1/AddV2_1`)."""
    if pattern.startswith("*"):
        return re.sub(r"_\d+$", "", metric).endswith(pattern[1:])
    return metric == pattern


def lookup_all(tool: str, version: str, metric: str, layer: Layer) -> list[Convention]:
    """Every catalogued convention for this tool/version/metric/kind, in table order. A tool may count one kind
    two documented ways depending on the call (ptflops: an nn.ReLU twice, a bare F.relu once); the diff engine
    takes the first that fits."""
    return entries(tool, version, metric, kind_key(layer), lambda key: layer.op if key == "op" else layer.attr(key))


def entries(tool: str, version: str, metric: str, key: str, fact=None) -> list[Convention]:
    """The entries for a kind key. `fact(name)` gives the layer's facts that conditional entries test (module
    class, torch function, ...); without it (a layer known only by its terms) only unconditional entries apply."""
    return [entry for entry in CATALOGUE if entry.tool == tool and key in entry.kinds
            and metric_matches(entry.metric, metric) and in_range(version, entry.versions)
            and (entry.holds(fact) if fact else not entry.conditional)]


def lookup(tool: str, version: str, metric: str, layer: Layer) -> Optional[Convention]:
    entries = lookup_all(tool, version, metric, layer)
    return entries[0] if entries else None
