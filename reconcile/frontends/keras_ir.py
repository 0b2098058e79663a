"""Keras 3 model + input shape -> layer IR (framework "keras").

Walks the Functional graph of the model (a Sequential is walked through the Functional it builds), one Layer
per layer call, in topological order. Shapes come from the symbolic tensors Keras recorded when the model was
built, so the factory must give `keras.Input` its batch (the IR counts the whole batch, like the torch IR).

Conventions, chosen so that a Keras twin has the same IR as its torch original:
- Shapes are channels-first: an image tensor (rank >= 4, or rank 3 at a 1-D spatial layer) in a
  channels_last layer is transposed NHWC -> NCHW. Dense / attention / LayerNorm tensors (N, L, F) are kept as
  they are, as torch's batch_first layout is the same.
- A fused activation (`Dense(..., activation="relu")`) is split into its own ACT layer right after the layer,
  named `aliases.get("<layer>/<activation>", "<layer>/<activation>")` and carrying attr `fused_with`.
- `params` counts the weights torch would call parameters: BatchNormalization's moving mean / variance are
  buffers in torch, so they are left out of `params` and kept in attr `buffers`.
- `padding="same"` is resolved to explicit leading pads the way TF does it (total pad split with the odd pixel at
  the end; tensorflow/core/framework/kernel_shape_util.cc, GetWindowedOutputSizeVerbose); an asymmetric pad keeps
  its trailing part in attr `padding_end`.
- Shape-only layers (InputLayer, Flatten, Reshape, Dropout, ...) do no arithmetic and are not listed; any layer
  type not described here becomes kind UNKNOWN, never dropped.
"""
from __future__ import annotations

import math
import os
from typing import Any, Callable, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TF loads: silence its C++ start-up chatter
import keras  # noqa: E402

from conventions import ir  # noqa: E402
from conventions.ir import Layer, Model, Shape  # noqa: E402

_SKIPPED = {"InputLayer", "Flatten", "Reshape", "Dropout", "SpatialDropout1D", "SpatialDropout2D",
            "SpatialDropout3D", "GaussianDropout", "AlphaDropout", "Identity", "Permute"}
_ACTIVATION_LAYERS = {"ReLU": "relu", "LeakyReLU": "leaky_relu", "ELU": "elu", "PReLU": "prelu"}
_SIMPLE_KINDS = {"Add": ir.ADD, "Subtract": ir.ADD, "Multiply": ir.MUL, "Concatenate": ir.CONCAT,
                 "Softmax": ir.SOFTMAX, "LayerNormalization": ir.LAYER_NORM}
_BN_BUFFERS = ("moving_mean", "moving_variance")


def numel(shape: Any) -> int:
    return math.prod(int(d) for d in shape)


def _shape(tensor: Any, batch: Optional[int]) -> Shape:
    """A symbolic tensor's shape; a model built without a batch (None) gets the requested one."""
    dims = list(tensor.shape)
    if dims and dims[0] is None and batch is not None:
        dims[0] = batch
    if any(d is None for d in dims):
        raise ValueError(f"tensor {getattr(tensor, 'name', '')} has unknown dimensions {tuple(tensor.shape)}: the IR "
                         "needs concrete shapes (give keras.Input a fixed shape)")
    return tuple(int(d) for d in dims)


def channels_first(shape: Shape, spatial: bool) -> Shape:
    """NHWC -> NCHW (any number of spatial dims) when the tensor is an image of a channels_last layer."""
    if spatial and len(shape) >= 3:
        return (shape[0], shape[-1]) + tuple(shape[1:-1])
    return shape


def _is_spatial(layer: Any, shape: Shape) -> bool:
    """Whether a tensor seen by this layer is an image laid out channels_last (so it must be transposed)."""
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        return False
    return len(shape) >= 4 or (len(shape) == 3 and hasattr(layer, "data_format"))


def _tuple(value: Any, ndim: int) -> tuple[int, ...]:
    if isinstance(value, (tuple, list)):
        return tuple(int(v) for v in value)
    return (int(value),) * ndim


def same_padding(in_size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TF's SAME padding for one dimension: (before, after), the odd pixel after."""
    out = -(-in_size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - in_size, 0)
    return total // 2, total - total // 2


def _window(layer: Any, inp: Shape, kernel: tuple[int, ...], stride: tuple[int, ...],
            dilation: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[tuple[str, Any], ...]]:
    """Explicit leading padding of a conv / pool layer on channels-first input `inp`, plus attrs."""
    if layer.padding == "valid":
        return (0,) * len(kernel), ()
    pads = [same_padding(i, k, s, d) for i, k, s, d in zip(inp[2:], kernel, stride, dilation)]
    before, after = tuple(p[0] for p in pads), tuple(p[1] for p in pads)
    attrs: tuple[tuple[str, Any], ...] = (("padding_mode", layer.padding),)
    if layer.padding == "same" and after != before:
        attrs += (("padding_end", after),)
    return before, attrs


def _params(layer: Any) -> tuple[int, int]:
    """(parameters as torch counts them, buffers): BN moving statistics are buffers, not parameters."""
    params = buffers = 0
    for weight in getattr(layer, "weights", ()):  # keras.ops calls in a functional graph have no weights
        if weight.path.rsplit("/", 1)[-1] in _BN_BUFFERS:
            buffers += numel(weight.shape)
        else:
            params += numel(weight.shape)
    return params, buffers


def _conv(layer: Any, common: dict, inp: Shape) -> Layer:
    ndim = len(inp) - 2
    kernel = _tuple(layer.kernel_size, ndim)
    stride = _tuple(layer.strides, ndim)
    dilation = _tuple(layer.dilation_rate, ndim)
    # DepthwiseConv2D: one group per input channel (depth_multiplier outputs each), like torch groups=C_in.
    groups = inp[1] if hasattr(layer, "depth_multiplier") else int(getattr(layer, "groups", 1))
    padding, attrs = _window(layer, inp, kernel, stride, dilation)
    return Layer(kind=ir.CONV, kernel=kernel, stride=stride, padding=padding, dilation=dilation, groups=groups,
                 bias=bool(layer.use_bias), attrs=attrs, **common)


def _pool(layer: Any, common: dict, inp: Shape) -> Layer:
    kind = ir.POOL_MAX if "Max" in type(layer).__name__ else ir.POOL_AVG
    if "Global" in type(layer).__name__:
        spatial = tuple(inp[2:])
        return Layer(kind=kind, kernel=spatial, stride=spatial, attrs=(("global", True),), **common)
    ndim = len(inp) - 2
    kernel = _tuple(layer.pool_size, ndim)
    stride = _tuple(layer.strides if layer.strides is not None else layer.pool_size, ndim)
    padding, attrs = _window(layer, inp, kernel, stride, (1,) * ndim)
    return Layer(kind=kind, kernel=kernel, stride=stride, padding=padding, attrs=attrs, **common)


def _attention(layer: Any, common: dict, inputs: tuple[Shape, ...]) -> Layer:
    # keras MultiHeadAttention is called (query, value, key=value).
    query, value = inputs[0], inputs[1] if len(inputs) > 1 else inputs[0]
    key = inputs[2] if len(inputs) > 2 else value
    attrs = (("embed_dim", query[-1]), ("num_heads", layer.num_heads), ("kdim", key[-1]), ("vdim", value[-1]),
             ("q_len", query[1]), ("kv_len", key[1]), ("key_dim", layer.key_dim),
             ("value_dim", layer.value_dim or layer.key_dim))
    common = {k: v for k, v in common.items() if k != "attrs"}
    return Layer(kind=ir.ATTENTION, bias=bool(layer.use_bias), attrs=attrs, **common)


def _activation_name(fn: Any) -> Optional[str]:
    name = getattr(fn, "__name__", None) if fn is not None else None
    return None if name in (None, "linear") else name


def layer_ir(layer: Any, name: str, inputs: tuple[Shape, ...], output: Shape,
             call_inputs: Optional[tuple[Shape, ...]] = None) -> Optional[Layer]:
    """The IR of one Keras layer call (shapes already channels-first), or None for shape-only layers.

    `inputs` lists each distinct input tensor once (as torch.fx's `all_input_nodes` does, so MHA(h, h) has one
    input in both IRs); `call_inputs` keeps the call's argument order, which attention needs."""
    op = type(layer).__name__
    if op in _SKIPPED:
        return None
    params, buffers = _params(layer)
    common = dict(name=name, input_shapes=inputs, output_shape=output, op=op, params=params)
    if buffers:
        common["attrs"] = (("buffers", buffers),)
    if hasattr(layer, "kernel_size") and "Conv" in op and "Transpose" not in op and "Separable" not in op:
        return _conv(layer, common, inputs[0])
    if "Pooling" in op:
        return _pool(layer, common, inputs[0])
    if op == "Dense":
        return Layer(kind=ir.LINEAR, bias=bool(layer.use_bias), **common)
    if op == "BatchNormalization":
        return Layer(kind=ir.BN, **common)
    if op == "MultiHeadAttention":
        return _attention(layer, common, call_inputs or inputs)
    if op == "Activation":
        return Layer(kind=ir.ACT, **{**common, "op": _activation_name(layer.activation) or "linear"})
    if op in _ACTIVATION_LAYERS:
        return Layer(kind=ir.ACT, **{**common, "op": _ACTIVATION_LAYERS[op]})
    if op in _SIMPLE_KINDS:
        return Layer(kind=_SIMPLE_KINDS[op], **common)
    return Layer(kind=ir.UNKNOWN, **common)


def fused_activation(layer: Any, base: Layer, aliases: dict[str, str]) -> Optional[Layer]:
    """The activation a Conv/Dense applies inside its call, as its own ACT layer (torch writes it apart)."""
    if type(layer).__name__ == "Activation":
        return None
    act = _activation_name(getattr(layer, "activation", None))
    if act is None:
        return None
    key = f"{base.name}/{act}"
    return Layer(name=aliases.get(key, key), kind=ir.ACT, input_shapes=(base.output_shape,),
                 output_shape=base.output_shape, op=act, attrs=(("fused_with", base.name),))


def graph_model(model: Any) -> Any:
    """The Functional graph to walk: a Sequential keeps one in `_functional` once built with an Input."""
    if isinstance(model, keras.Sequential):
        functional = getattr(model, "_functional", None)
        if functional is None:
            raise ValueError(f"Sequential model {model.name!r} has no graph: start it with keras.Input(...)")
        return functional
    return model


def layer_calls(model: Any):
    """(layer, input tensors, output tensors) for every layer call inside `model`, nested models flattened."""
    model = graph_model(model)
    for op in model.operations:
        for index, node in enumerate(op._inbound_nodes):
            if f"{id(op)}_ib-{index}" not in model._nodes:  # a call made outside this model's graph
                continue
            if isinstance(op, keras.Model):
                yield from layer_calls(op)
            else:
                yield op, node.input_tensors, node.output_tensors


def walk(model: Any, aliases: Optional[dict[str, str]] = None,
         batch: Optional[int] = None) -> list[tuple[Any, Layer]]:
    """(keras layer, IR layer) pairs in call order; a fused activation is paired with the layer fusing it."""
    aliases = aliases or {}
    pairs: list[tuple[Any, Layer]] = []
    calls: dict[str, int] = {}

    def shape(layer: Any, tensor: Any) -> Shape:
        raw = _shape(tensor, batch)
        return channels_first(raw, _is_spatial(layer, raw))

    for layer, inputs, outputs in layer_calls(model):
        call_inputs = tuple(shape(layer, t) for t in inputs)
        distinct = tuple({id(t): s for t, s in zip(inputs, call_inputs)}.values())
        out = shape(layer, outputs[0])
        calls[layer.name] = calls.get(layer.name, 0) + 1
        base = layer_ir(layer, aliases.get(layer.name, layer.name), distinct, out, call_inputs)
        if base is None:
            continue
        if calls[layer.name] > 1:  # a shared layer called again: new compute, no new parameters (as torch_ir)
            base = Layer(**{**base.__dict__, "name": f"{base.name}#{calls[layer.name]}", "params": 0,
                            "attrs": base.attrs + (("shared_with", layer.name),)})
        pairs.append((layer, base))
        act = fused_activation(layer, base, aliases)
        if act is not None:
            pairs.append((layer, act))
    return pairs


def from_model(model: Any, input_shape: Shape, name: str = "model",
               aliases: Optional[dict[str, str]] = None) -> Model:
    layers = tuple(layer for _, layer in walk(model, aliases, input_shape[0] if input_shape else None))
    return Model(name=name, framework="keras", input_shape=tuple(input_shape), layers=layers)


def build(factory: Callable[..., Any], input_shape: Shape) -> Any:
    """Call a Keras factory with the channels-first input shape; its failures are the user's errors."""
    from ..errors import UserError

    try:
        model = factory(tuple(input_shape))
    except Exception as exc:
        raise UserError(f"Keras factory {getattr(factory, '__name__', factory)!r} raised "
                        f"{type(exc).__name__}: {exc}") from None
    if not isinstance(model, keras.Model):
        raise UserError(f"Keras factory returned {type(model).__name__}, not a keras.Model")
    return model


def from_factory(factory: str, input_shape: Shape, name: str = "model",
                 aliases: Optional[dict[str, str]] = None) -> Model:
    """`factory` is "module:function" (or "/path/file.py:function"), called with the channels-first shape."""
    from ..factories import load_factory

    return from_model(build(load_factory(factory), input_shape), input_shape, name, aliases)
