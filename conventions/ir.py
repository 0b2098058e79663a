"""The one layer description (IR) every front end produces and every formula, adapter and report reads.

Shapes are channels-first (N, C, *spatial) whatever the framework: the Keras front end transposes NHWC, so a
conv layer has the same IR from PyTorch, Keras and a Caffe prototxt. Shapes include the batch dimension; every
count derived from a Layer covers the whole batch (batch 1 gives the document's per-sample numbers).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

# Layer kinds. The document has formulas only for CONV, LINEAR and the pools; the others are first-class so that
# what a tool counts for them (or silently does not) can be named.
CONV = "conv"
LINEAR = "linear"
POOL_MAX = "pool_max"
POOL_AVG = "pool_avg"
BN = "bn"
LAYER_NORM = "layer_norm"
ACT = "act"  # op holds the function: relu, gelu, sigmoid, ...
ADD = "add"  # element-wise sum of tensors (residual connection, Caffe Eltwise SUM)
MUL = "mul"
MATMUL = "matmul"
ATTENTION = "attention"  # multi-head attention as one layer (projections + two matmuls + softmax)
SOFTMAX = "softmax"
CONCAT = "concat"
# Kinds the torch front end types from the aten ops a call dispatched (conventions.terms says what each costs).
EINSUM = "einsum"  # torch.einsum: a product (MACC against a weight, ATTN between two activations)
SDPA = "sdpa"  # F.scaled_dot_product_attention / its aten kernels: QK^T and AV of every head
EMBEDDING = "embedding"  # a table lookup: parameters, no arithmetic
NORM = "norm"  # normalisations other than BN / LayerNorm: GroupNorm, RMSNorm, F.normalize, ...
REDUCE_MEAN = "reduce_mean"  # x.mean(...) used as pooling or inside a norm
INTERPOLATE = "interpolate"  # upsampling
ELEMENTWISE = "elementwise"  # any other element-wise arithmetic (exp, pow, rsqrt, where, ...)
RNN = "rnn"  # nn.RNN / nn.GRU / nn.LSTM and their cells: gate products of every step, layer and direction
PARAMETER = "parameter"  # a parameter no traced layer owns (class token, position table, unexecuted branch)
UNSUPPORTED_OP = "unsupported_op"  # an op the op table (conventions/aten_ops.py) does not know: products unknown
NO_MACC_CONVENTION = "no_macc_convention"  # arithmetic with no multiply-accumulate convention (an FFT, a solve)
GAP = "gap"  # what a conservation law found missing: params or products the layer view could not attribute
UNKNOWN = "unknown"  # a front end saw an op it has no description for: kept, never dropped

KINDS = (CONV, LINEAR, POOL_MAX, POOL_AVG, BN, LAYER_NORM, ACT, ADD, MUL, MATMUL, ATTENTION, SOFTMAX, CONCAT,
         EINSUM, SDPA, EMBEDDING, NORM, REDUCE_MEAN, INTERPOLATE, ELEMENTWISE, RNN, PARAMETER, UNSUPPORTED_OP,
         NO_MACC_CONVENTION, GAP, UNKNOWN)
POOL_KINDS = (POOL_MAX, POOL_AVG)

Shape = tuple[int, ...]


def numel(shape: Shape) -> int:
    return math.prod(shape) if shape else 0


@dataclass(frozen=True)
class Layer:
    """One layer of a model, framework-neutral.

    `params` is the parameter count the framework itself holds for the layer (torch: the module's own
    parameters; prototxt: derived from the blob shapes Caffe would allocate), so formulas can be checked
    against it. `attrs` carries kind-specific facts (attention heads, pooling `global`, ...).
    """

    name: str
    kind: str
    input_shapes: tuple[Shape, ...]
    output_shape: Shape
    kernel: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()
    padding: tuple[int, ...] = ()
    dilation: tuple[int, ...] = ()
    groups: int = 1
    bias: bool = False
    op: str = ""  # the framework's own op / module type, e.g. "Conv2d", "relu", "Convolution"
    params: int = 0
    attrs: tuple[tuple[str, Any], ...] = field(default=())

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"layer {self.name!r}: unknown kind {self.kind!r}")

    @property
    def input_shape(self) -> Shape:
        return self.input_shapes[0] if self.input_shapes else ()

    @property
    def batch(self) -> int:
        return self.output_shape[0] if self.output_shape else 1

    @property
    def in_elements(self) -> int:
        return sum(numel(s) for s in self.input_shapes)

    @property
    def out_elements(self) -> int:
        return numel(self.output_shape)

    @property
    def kernel_area(self) -> int:
        return math.prod(self.kernel) if self.kernel else 1

    def attr(self, key: str, default: Any = None) -> Any:
        return dict(self.attrs).get(key, default)


@dataclass(frozen=True)
class Model:
    """A model as a front end saw it: ordered layers plus where it came from."""

    name: str
    framework: str  # torch | keras | caffe
    input_shape: Shape
    layers: tuple[Layer, ...]
    notes: tuple[str, ...] = ()  # e.g. "traced with module hooks: functional ops are not visible"
    # Parameters one token's forward multiplies, where routing (mixture-of-experts) picks some of them: every
    # parameter, a routed expert's at the share a token uses (top-k of E: k/E). None: no routing, all of them.
    active_params: Optional[int] = None

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)
