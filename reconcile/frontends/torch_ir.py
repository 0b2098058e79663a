"""PyTorch module + input shape -> layer IR.

Traced with torch.fx so functional ops (`F.relu`, `x + y`, `torch.matmul`) are seen as well as modules: the
diff engine must be able to name what hook-based counters miss. fx treats `torch.nn` modules as leaves, so an
`nn.MultiheadAttention` is one ATTENTION layer. A model fx cannot trace (data-dependent control flow) falls back
to forward hooks on leaf modules, and the Model carries a note that functional ops were not visible.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Callable, Optional

import torch
import torch.fx as fx
import torch.nn as nn
from torch.fx.passes.shape_prop import ShapeProp

from conventions import ir
from conventions.ir import Layer, Model

_ACTIVATION_MODULES = (nn.ReLU, nn.ReLU6, nn.GELU, nn.Sigmoid, nn.Tanh, nn.SiLU, nn.Hardswish, nn.Hardsigmoid,
                       nn.LeakyReLU, nn.ELU, nn.Softplus, nn.Mish, nn.PReLU)
_ACTIVATION_FUNCTIONS = {"relu", "relu_", "relu6", "gelu", "sigmoid", "tanh", "silu", "hardswish", "hardsigmoid",
                         "leaky_relu", "elu", "softplus", "mish"}
# Shape-only and bookkeeping ops: no arithmetic, not layers.
_SHAPE_OPS = {"getitem", "size", "view", "reshape", "flatten", "permute", "transpose", "contiguous", "chunk",
              "split", "squeeze", "unsqueeze", "expand", "getattr", "dropout", "float", "to", "type_as",
              "unflatten", "t", "clone", "detach"}
_SKIPPED_MODULES = (nn.Dropout, nn.Identity, nn.Flatten, nn.Unflatten)


def _tup(value: Any, ndim: int) -> tuple[int, ...]:
    if isinstance(value, (tuple, list)):
        return tuple(int(v) for v in value)
    return (int(value),) * ndim


def _shape(meta: Any) -> Optional[tuple[int, ...]]:
    if meta is None:
        return None
    shape = getattr(meta, "shape", None)  # TensorMetadata is itself a NamedTuple: test it first
    if shape is not None:
        return tuple(int(d) for d in shape)
    if isinstance(meta, (tuple, list)):  # modules returning tuples (MHA: (output, weights)): first tensor
        for item in meta:
            shape = _shape(item)
            if shape is not None:
                return shape
    return None


def _own_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _module_layer(name: str, module: nn.Module, inputs: tuple[tuple[int, ...], ...],
                  output: tuple[int, ...]) -> Optional[Layer]:
    """The IR of one leaf module call, or None for modules that do no arithmetic (Dropout, Flatten, ...)."""
    op = type(module).__name__
    common = dict(name=name, input_shapes=inputs, output_shape=output, op=op, params=_own_params(module))
    ndim = max(len(inputs[0]) - 2, 1) if inputs else 1
    if isinstance(module, _SKIPPED_MODULES):
        return None
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        padding = module.padding if not isinstance(module.padding, str) else ()
        return Layer(kind=ir.CONV, kernel=tuple(module.kernel_size), stride=tuple(module.stride),
                     padding=tuple(padding), dilation=tuple(module.dilation), groups=module.groups,
                     bias=module.bias is not None, **common)
    if isinstance(module, nn.Linear):
        return Layer(kind=ir.LINEAR, bias=module.bias is not None, **common)
    if isinstance(module, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)):
        kind = ir.POOL_MAX if "Max" in op else ir.POOL_AVG
        stride = module.stride if module.stride is not None else module.kernel_size
        return Layer(kind=kind, kernel=_tup(module.kernel_size, ndim), stride=_tup(stride, ndim),
                     padding=_tup(module.padding, ndim), **common)
    if isinstance(module, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
                           nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)):
        kind = ir.POOL_MAX if "Max" in op else ir.POOL_AVG
        # Adaptive windows: ceil(in/out) per dimension, exact when out divides in (the usual global pool).
        kernel = tuple(math.ceil(i / o) for i, o in zip(inputs[0][2:], output[2:]))
        return Layer(kind=kind, kernel=kernel, stride=kernel, attrs=(("adaptive", True),), **common)
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, nn.InstanceNorm2d)):
        return Layer(kind=ir.BN, **common)
    if isinstance(module, nn.LayerNorm):
        return Layer(kind=ir.LAYER_NORM, **common)
    if isinstance(module, _ACTIVATION_MODULES):
        return Layer(kind=ir.ACT, **{**common, "op": op.lower()})
    if isinstance(module, nn.Softmax):
        return Layer(kind=ir.SOFTMAX, **common)
    if isinstance(module, nn.MultiheadAttention):
        query, key = inputs[0], inputs[1] if len(inputs) > 1 else inputs[0]
        seq_axis = 1 if module.batch_first else 0
        attrs = (("embed_dim", module.embed_dim), ("num_heads", module.num_heads), ("kdim", module.kdim),
                 ("vdim", module.vdim), ("q_len", query[seq_axis]), ("kv_len", key[seq_axis]))
        return Layer(kind=ir.ATTENTION, bias=module.in_proj_bias is not None, attrs=attrs, **common)
    return Layer(kind=ir.UNKNOWN, **common)


def _function_name(node: fx.Node) -> str:
    target = node.target
    if isinstance(target, str):
        return target
    return getattr(target, "__name__", str(target)).strip("_")


def _function_layer(name: str, node: fx.Node, inputs: tuple[tuple[int, ...], ...],
                    output: tuple[int, ...]) -> Optional[Layer]:
    fn = _function_name(node)
    # `functional` marks what module hooks cannot see (F.relu, x + y): the diff engine names it when a tool misses it
    common = dict(name=name, input_shapes=inputs, output_shape=output, op=fn, attrs=(("functional", True),))
    if fn in _SHAPE_OPS or not output:
        return None
    if fn in _ACTIVATION_FUNCTIONS:
        return Layer(kind=ir.ACT, **common)
    if fn in ("add", "iadd", "sub", "isub"):
        return Layer(kind=ir.ADD, **common)
    if fn in ("mul", "imul", "truediv", "div"):
        return Layer(kind=ir.MUL, **common)
    if fn in ("matmul", "bmm", "mm", "baddbmm"):
        return Layer(kind=ir.MATMUL, **common)
    if fn == "softmax":
        return Layer(kind=ir.SOFTMAX, **common)
    if fn in ("cat", "concat"):
        return Layer(kind=ir.CONCAT, **common)
    if fn == "linear":
        return Layer(kind=ir.LINEAR, bias=len(node.args) > 2 and node.args[2] is not None, **common)
    if fn.startswith(("adaptive_avg_pool", "adaptive_max_pool")) and inputs:
        kernel = tuple(math.ceil(i / o) for i, o in zip(inputs[0][2:], output[2:]))
        return Layer(kind=ir.POOL_MAX if "max" in fn else ir.POOL_AVG, kernel=kernel, stride=kernel,
                     **{**common, "attrs": common["attrs"] + (("adaptive", True),)})
    if fn.startswith(("max_pool", "avg_pool")) and inputs:
        ndim = len(inputs[0]) - 2
        args = dict(zip(("input", "kernel_size", "stride", "padding"), node.args)) | dict(node.kwargs)
        kernel = _tup(args["kernel_size"], ndim)
        stride = _tup(args.get("stride") or args["kernel_size"], ndim)
        return Layer(kind=ir.POOL_MAX if fn.startswith("max") else ir.POOL_AVG, kernel=kernel, stride=stride,
                     padding=_tup(args.get("padding", 0), ndim), **common)
    return Layer(kind=ir.UNKNOWN, **common)


def _arg_shapes(node: fx.Node) -> tuple[tuple[int, ...], ...]:
    shapes = []
    for arg in node.all_input_nodes:
        shape = _shape(arg.meta.get("tensor_meta"))
        if shape is not None:
            shapes.append(shape)
    return tuple(shapes)


def trace_fx(module: nn.Module, input_shape: tuple[int, ...], aliases: dict[str, str]) -> list[Layer]:
    graph = fx.symbolic_trace(module)
    with torch.no_grad():
        ShapeProp(graph).propagate(torch.zeros(*input_shape))
    modules = dict(graph.named_modules())
    layers: list[Layer] = []
    seen_modules: dict[str, int] = {}
    for node in graph.graph.nodes:
        if node.op not in ("call_module", "call_function", "call_method"):
            continue
        output = _shape(node.meta.get("tensor_meta")) or ()
        inputs = _arg_shapes(node)
        if node.op == "call_module":
            name = str(node.target)
            calls = seen_modules[name] = seen_modules.get(name, 0) + 1
            layer = _module_layer(name, modules[name], inputs, output)
            if layer is not None and calls > 1:
                # A module called again: a distinct layer of compute, but its parameters already exist once.
                layer = Layer(**{**layer.__dict__, "name": f"{name}#{calls}", "params": 0,
                                 "attrs": layer.attrs + (("shared_with", name),)})
        else:
            layer = _function_layer(aliases.get(node.name, node.name), node, inputs, output)
        if layer is not None:
            layers.append(layer)
    return layers


def trace_hooks(module: nn.Module, input_shape: tuple[int, ...]) -> list[Layer]:
    """Fallback for models fx cannot trace: forward hooks on leaf modules. Functional ops are invisible."""
    layers: list[Layer] = []
    names = {m: n for n, m in module.named_modules()}
    calls: dict[str, int] = {}

    def hook(mod: nn.Module, args: tuple, out: Any) -> None:
        name = names[mod]
        calls[name] = calls.get(name, 0) + 1
        inputs = tuple(tuple(a.shape) for a in args if isinstance(a, torch.Tensor))
        layer = _module_layer(name, mod, inputs, _shape(out) or ())
        if layer is not None:
            if calls[name] > 1:
                layer = Layer(**{**layer.__dict__, "name": f"{name}#{calls[name]}", "params": 0})
            layers.append(layer)

    handles = [m.register_forward_hook(hook) for m in module.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            module(torch.zeros(*input_shape))
    finally:
        for h in handles:
            h.remove()
    return layers


def from_module(module: nn.Module, input_shape: tuple[int, ...], name: str = "model",
                aliases: Optional[dict[str, str]] = None) -> Model:
    module = module.eval()
    if not list(module.children()) and type(module).__module__.startswith("torch.nn"):
        # A bare nn.Conv2d would be traced *through* (into F.conv2d); keep it one layer, named after its type.
        module = nn.Sequential(OrderedDict([(type(module).__name__.lower(), module)]))
    try:
        layers = trace_fx(module, input_shape, aliases or {})
        notes: tuple[str, ...] = ()
    except Exception as exc:  # fx cannot trace data-dependent Python; hooks still see every module
        layers = trace_hooks(module, input_shape)
        notes = (f"torch.fx could not trace the model ({type(exc).__name__}: {exc}); traced with module hooks, "
                 "so functional ops (F.relu, +, matmul) are not listed",)
    return Model(name=name, framework="torch", input_shape=tuple(input_shape), layers=tuple(layers), notes=notes)


def build(factory: Callable[[], nn.Module]) -> nn.Module:
    module = factory()
    if not isinstance(module, nn.Module):
        raise TypeError(f"factory returned {type(module).__name__}, not a torch nn.Module")
    return module
