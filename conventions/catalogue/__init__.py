"""What each tool counts, per metric, layer kind and tool version, as a combination of basis terms.

A declarative table (in the spirit of fvcore's `_DEFAULT_SUPPORTED_OPS`), one module per tool; every entry cites
the tool's source file and function it encodes. The diff engine never trusts an entry blindly: it evaluates the
combination on the layer's terms and reports the residual; an entry that does not fit falls back to a bounded
search. Entries are keyed by version ranges, so explanations stay right for old releases.
"""
from __future__ import annotations

import importlib
from typing import Optional

from ..ir import Layer
from .base import Convention, kind_key

TOOL_MODULES = ("document", "thop", "torchstat", "torchsummary", "tf_profiler", "netscope")
TOOL_MODULES += ("fvcore", "ptflops", "torchinfo", "torch_flop_counter", "ultralytics_thop", "calflops", "deepspeed")

CATALOGUE: tuple[Convention, ...] = tuple(
    entry for name in TOOL_MODULES for entry in importlib.import_module(f"{__name__}.{name}").CONVENTIONS)

__all__ = ["CATALOGUE", "Convention", "kind_key", "lookup", "in_range"]


def _release(version: str) -> tuple:
    parts = []
    for piece in version.replace("+", ".").split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits or not piece[0].isdigit():
            break
        parts.append(int(digits))
    return tuple(parts)


def in_range(version: str, bounds: tuple[str, str]) -> bool:
    """Release-number comparison ("0.1.1.post2209072238" is in ["0.1", "")). Non-numeric versions (Netscope
    commit ids) must match a bound exactly."""
    low, high = bounds
    if not low and not high:
        return True
    if not _release(version) or (low and not _release(low)):
        return version == low
    if low and _release(version) < _release(low):
        return False
    if high and _release(version) >= _release(high):
        return False
    return True


def metric_matches(pattern: str, metric: str) -> bool:
    if pattern.startswith("*"):
        return metric.endswith(pattern[1:])
    return metric == pattern


def lookup(tool: str, version: str, metric: str, layer: Layer) -> Optional[Convention]:
    key = kind_key(layer)
    for entry in CATALOGUE:
        if entry.tool == tool and key in entry.kinds and metric_matches(entry.metric, metric) \
                and in_range(version, entry.versions):
            return entry
    return None
