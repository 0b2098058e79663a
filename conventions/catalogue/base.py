"""The Convention record and helpers shared by every tool's catalogue module."""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Layer
from ..terms import BIAS_PARAMS, WEIGHTS


def kind_key(layer: Layer) -> str:
    """IR kind, with adaptive pools split out: several tools count them differently from fixed windows."""
    if layer.kind in ("pool_avg", "pool_max") and layer.attr("adaptive"):
        return f"{layer.kind}_adaptive"
    return layer.kind


@dataclass(frozen=True)
class Convention:
    tool: str
    metric: str  # the tool's own label; "*/Conv2D" matches any metric ending in "/Conv2D"
    kinds: tuple[str, ...]
    combo: tuple[tuple[str, int], ...]  # (term, coefficient) pairs; () means the tool counts 0
    says: str  # the convention in words
    source: str  # tool file and function the entry encodes
    versions: tuple[str, str] = ("", "")  # [min, max) by release number; "" = unbounded
    per_sample: bool = False  # the tool ignores the batch dimension

    @property
    def terms(self) -> dict[str, int]:
        return dict(self.combo)


def rule(tool, metric, kinds, combo, says, source, versions=("", ""), per_sample=False) -> Convention:
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    return Convention(tool, metric, kinds, tuple(combo.items()), says, source, versions, per_sample)


WEIGHTED = ("conv", "linear")
PARAMS_ALL = ("conv", "linear", "bn", "layer_norm", "attention", "act", "pool_max", "pool_avg", "pool_avg_adaptive",
              "pool_max_adaptive", "add", "mul", "matmul", "softmax", "concat")
weights_plus_biases = {WEIGHTS: 1, BIAS_PARAMS: 1}
