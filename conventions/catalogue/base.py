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
    significant_digits: int = 0  # the tool parses a number printed to this many digits (0: exact)
    post_divide: int = 1  # ... and then floor-divides it (fvcore halves numpy's einsum FLOP count)
    # Only for layers with these facts, e.g. (("api", ("Tensor.softmax",)),) or (("op", ("Conv1D",)),): a tool
    # that patches torch functions counts `F.softmax` but not `Tensor.softmax`; a hook tool knows module classes.
    when: tuple[tuple[str, tuple], ...] = ()
    unless: tuple[tuple[str, tuple], ...] = ()  # ... and not for layers with these (a module class it has no rule for)

    @property
    def conditional(self) -> bool:
        return bool(self.when or self.unless)

    def holds(self, fact) -> bool:
        """`fact(key)` gives the layer's value for a condition key ("op", "api", "affine", ...)."""
        return all(fact(key) in allowed for key, allowed in self.when) and \
            not any(fact(key) in excluded for key, excluded in self.unless)

    @property
    def terms(self) -> dict[str, int]:
        return dict(self.combo)


def rule(tool, metric, kinds, combo, says, source, versions=("", ""), per_sample=False,
         significant_digits=0, post_divide=1, when=None, unless=None) -> Convention:
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    pairs = lambda facts: tuple((key, tuple(values)) for key, values in (facts or {}).items())
    return Convention(tool, metric, kinds, tuple(combo.items()), says, source, versions, per_sample,
                      significant_digits, post_divide, pairs(when), pairs(unless))


def round_significant(value: float, digits: int) -> float:
    """`value` as printed with `digits` significant digits and read back (numpy's einsum_path prints its FLOP
    count as '1.850e+04'): what a tool parsing that text ends up with."""
    return float(f"{value:.{digits - 1}e}") if digits and value else value


WEIGHTED = ("conv", "linear")
PARAMS_ALL = ("conv", "linear", "bn", "layer_norm", "attention", "act", "pool_max", "pool_avg", "pool_avg_adaptive",
              "pool_max_adaptive", "add", "mul", "matmul", "softmax", "concat", "einsum", "sdpa", "embedding", "norm",
              "reduce_mean", "interpolate", "elementwise", "parameter")
# Kinds without products: a counter that charges only products (FlopCounterMode, ptflops' aten backend) counts 0.
NO_ARITHMETIC_KINDS = ("bn", "layer_norm", "act", "add", "mul", "softmax", "concat", "embedding", "norm",
                       "reduce_mean", "interpolate", "elementwise", "pool_max", "pool_avg", "pool_max_adaptive",
                       "pool_avg_adaptive")
# Product kinds carry MACC (against a weight) or ATTN (between activations), never both: one entry covers both.
PRODUCTS = ("matmul", "einsum")

# How a tool sees a model. What it can miss follows from this: module hooks never see functional code; a tool
# that patches torch functions sees the patched ones; a dispatch-level or traced tool sees every aten op but may
# report per module only.
HOOKS = "module hooks"
HOOKS_AND_PATCHES = "module hooks plus patched torch functions"
DISPATCH = "aten ops under a TorchDispatchMode"
JIT_TRACE = "aten ops of a TorchScript trace"
TF_GRAPH = "TensorFlow graph ops"
PROTOTXT = "Caffe prototxt layers"
FORMULAS = "the document's formulas"
SEES_EVERY_OP = (DISPATCH, JIT_TRACE, TF_GRAPH, FORMULAS)
weights_plus_biases = {WEIGHTS: 1, BIAS_PARAMS: 1}
