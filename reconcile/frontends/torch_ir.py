"""PyTorch module + input shape -> layer IR, from two views of one forward.

The layer view: torch.fx, so functional ops (`F.relu`, `x + y`, `torch.matmul`) are seen as well as modules (the
diff engine must be able to name what hook-based counters miss); fx treats `torch.nn` modules as leaves, so an
`nn.MultiheadAttention` is one ATTENTION layer. A model fx cannot trace (data-dependent control flow, most of
`transformers`) is read through module calls instead (global forward hooks).

The dispatch view (frontends/torch_dispatch.py): every aten op of the same forward, filed under the fx node or
module call that issued it. What the layer view cannot type (an unknown module, a wrapped function, an einsum,
the code a container runs between its children) is typed from its aten ops (`matmul`, `sdpa`, `layer_norm`,
`reduce_mean`, ...), never left as `unknown` with zeros. Two conservation laws are then checked against oracles
this module does not compute, and any gap becomes a row of kind `gap`:
  - params: the total the document's formulas print for the layers (conventions/formulas.py; a layer's weights are
    the parameters it reads, a weight-normed conv's `weight_g` and `weight_v`), plus one `parameter` row per
    parameter no layer owns (a class token, a position table, a branch that never ran: `executed` False) ==
    sum(p.numel() for p in model.parameters());
  - products: the layers' MACC + ATTN (from their shapes, conventions/terms.py) == the multiply-accumulates the op
    table (conventions/aten_ops.py) counts for the ops the forward executed.
An op the table does not know becomes a row of kind `unsupported_op` and a warning; an op with no
multiply-accumulate convention (an FFT) a row of kind `no_macc_convention`.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Callable, Optional

import torch
import torch.fx as fx
import torch.nn as nn
from torch.fx.passes.shape_prop import ShapeProp

from conventions import aten_ops, ir
from conventions import terms as T
from conventions.formulas import layer_counts
from conventions.ir import Layer, Model

from .torch_dispatch import ApiCalls, AtenCall, Call, ModuleCalls, Recorder

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
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                           nn.ConvTranspose3d)):
        padding = module.padding if not isinstance(module.padding, str) else ()
        transposed = (("transposed", True),) if module.transposed else ()
        return Layer(kind=ir.CONV, kernel=tuple(module.kernel_size), stride=tuple(module.stride),
                     padding=tuple(padding), dilation=tuple(module.dilation), groups=module.groups,
                     bias=module.bias is not None, attrs=transposed, **common)
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
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm1d, nn.InstanceNorm2d,
                           nn.InstanceNorm3d)):
        return Layer(kind=ir.BN, **common)
    if isinstance(module, nn.GroupNorm):  # per group, not per channel over the batch: its own kind, as aten's op
        return Layer(kind=ir.NORM, attrs=(("aten", "native_group_norm"), ("affine", module.affine)), **common)
    if isinstance(module, (nn.RNNBase, nn.RNNCellBase)):
        return _recurrent_layer(module, common)
    if isinstance(module, nn.LayerNorm):
        return Layer(kind=ir.LAYER_NORM, **common)
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        return Layer(kind=ir.EMBEDDING, **common)
    if isinstance(module, nn.RMSNorm):
        return Layer(kind=ir.NORM, **common)
    if isinstance(module, nn.Upsample):
        return Layer(kind=ir.INTERPOLATE, **common)
    if isinstance(module, _ACTIVATION_MODULES):
        return Layer(kind=ir.ACT, **{**common, "op": op.lower()})
    if isinstance(module, nn.Softmax):
        return Layer(kind=ir.SOFTMAX, **common)
    if isinstance(module, nn.MultiheadAttention) and inputs:  # called by keyword (query=...): its ops, split
        query, key = inputs[0], inputs[1] if len(inputs) > 1 else inputs[0]
        seq_axis = 1 if module.batch_first else 0
        # (L, N, E) unless batch_first; an unbatched (L, E) query is one sequence
        batch = query[1 - seq_axis] if len(query) == 3 else 1
        seq_axis = seq_axis if len(query) == 3 else 0
        attrs = (("batch", batch), ("embed_dim", module.embed_dim), ("num_heads", module.num_heads),
                 ("kdim", module.kdim), ("vdim", module.vdim), ("q_len", query[seq_axis]), ("kv_len", key[seq_axis]))
        return Layer(kind=ir.ATTENTION, bias=module.in_proj_bias is not None, attrs=attrs, **common)
    return Layer(kind=ir.UNKNOWN, **common)


# nn.RNN / nn.GRU / nn.LSTM (and their cells): gates per step, from the module's mode (torch/nn/modules/rnn.py)
_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _recurrent_layer(module: nn.Module, common: dict) -> Layer:
    """An RNN, GRU or LSTM (or one of their cells) as one layer: its products are computed from the module's sizes
    and the input's rows (conventions/terms.py rnn_terms), apart from the kernels that run them."""
    if isinstance(module, nn.RNNBase):
        mode, layers, directions = module.mode, module.num_layers, 2 if module.bidirectional else 1
        proj = module.proj_size
    else:
        mode = {nn.LSTMCell: "LSTM", nn.GRUCell: "GRU"}.get(type(module), "RNN_TANH")
        layers, directions, proj = 1, 1, 0
    attrs = (("mode", mode), ("gates", _GATES[mode]), ("input_size", module.input_size),
             ("hidden_size", module.hidden_size), ("proj_size", proj), ("num_layers", layers),
             ("directions", directions))
    return Layer(kind=ir.RNN, bias=bool(module.bias), attrs=attrs, **common)


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


# ------------------------------------------------------------------------------------ aten ops -> layer kinds
_ACT_OPS = {"relu", "relu6", "gelu", "silu", "sigmoid", "tanh", "hardswish", "hardsigmoid", "hardtanh", "leaky_relu",
            "elu", "softplus", "mish", "prelu", "_prelu_kernel", "glu", "log_sigmoid", "threshold", "celu", "selu"}
_OP_KINDS = {
    **{op: ir.MATMUL for op in ("mm", "addmm", "bmm", "baddbmm")},
    **{op: ir.CONV for op in ("convolution", "_convolution", "convolution_overrideable", "mkldnn_convolution")},
    **{op: ir.LAYER_NORM for op in ("native_layer_norm", "layer_norm")},
    **{op: ir.BN for op in ("native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training",
                            "batch_norm")},
    **{op: ir.NORM for op in ("native_group_norm", "group_norm", "rms_norm", "_fused_rms_norm", "linalg_vector_norm",
                              "norm")},
    "mean": ir.REDUCE_MEAN, "embedding": ir.EMBEDDING,
    **{op: ir.SOFTMAX for op in ("_softmax", "softmax", "_log_softmax", "log_softmax")},
    **{op: ir.ADD for op in ("add", "add_", "sub", "sub_", "rsub")},
    **{op: ir.MUL for op in ("mul", "mul_", "div", "div_")},
    **{op: ir.ACT for op in _ACT_OPS | {f"{a}_" for a in _ACT_OPS}},
    # other arithmetic, element by element or reducing: a row each, never a silent nothing
    **{op: ir.ELEMENTWISE for op in ("pow", "rsqrt", "sqrt", "exp", "log", "neg", "reciprocal", "sum", "var",
                                     "var_mean", "std", "amax", "amin", "cumsum", "erf", "sin", "cos", "clamp",
                                     "clamp_min", "clamp_max", "abs", "addcmul", "addcdiv", "lerp", "logsumexp",
                                     "pow_", "rsqrt_", "exp_", "neg_", "clamp_", "erf_")},
}


def _op_kind(call: AtenCall) -> Optional[str]:
    if call.products:
        if call.extra.get("fused"):  # a fused attention / encoder kernel: its products split by operand
            return ir.MATMUL
        return ir.SDPA if call.op.startswith(("_scaled_dot_product", "scaled_dot_product", "_triton_scaled")) else \
            _OP_KINDS.get(call.op, ir.MATMUL)
    if call.op.startswith(("max_pool", "avg_pool", "adaptive_avg_pool", "adaptive_max_pool", "_adaptive_avg_pool")):
        return ir.POOL_MAX if "max" in call.op else ir.POOL_AVG
    if call.op.startswith(("upsample", "_upsample")):
        return ir.INTERPOLATE
    kind = _OP_KINDS.get(call.op)
    return None if kind in (ir.MATMUL, ir.CONV) else kind  # a product op that multiplied nothing (empty)


def _pool_attrs(call: AtenCall) -> dict:
    ndim = max(len(call.input_shapes[0]) - 2, 1) if call.input_shapes else 1
    if call.op.startswith(("adaptive", "_adaptive")):
        kernel = tuple(math.ceil(i / o) for i, o in zip(call.input_shapes[0][2:], call.output_shape[2:]))
        return dict(kernel=kernel, stride=kernel, attrs=(("adaptive", True),))
    kernel = _tup(call.args[0], ndim) if call.args else (1,) * ndim
    stride = _tup(call.args[1], ndim) if len(call.args) > 1 and call.args[1] else kernel
    padding = _tup(call.args[2], ndim) if len(call.args) > 2 else (0,) * ndim
    return dict(kernel=kernel, stride=stride, padding=padding, attrs=())


def _op_layer(name: str, call: AtenCall, kind: str, input_shapes=None, output_shape=None) -> Layer:
    """The IR of one aten op (or of a node / module whose only arithmetic is that op)."""
    inputs = input_shapes if input_shapes is not None else call.input_shapes
    output = output_shape if output_shape is not None else call.output_shape
    attrs: tuple = (("functional", True), ("aten", call.op)) + ((("api", call.api),) if call.api else ())
    extra: dict = {}
    if kind == ir.CONV:
        conv = call.extra
        extra = dict(kernel=tuple(conv["kernel"]), stride=tuple(conv["stride"]), padding=tuple(conv["padding"]),
                     dilation=tuple(conv["dilation"]), groups=conv["groups"], bias=call.bias_param)
        inputs = call.input_shapes
        if conv["transposed"]:
            attrs += (("transposed", True),)
    elif kind in (ir.MATMUL, ir.EINSUM):
        attrs += (("products", call.products), ("operand", "weight" if call.weighted else "activation"))
        if call.extra.get("fused"):  # nn.MultiheadAttention's / TransformerEncoderLayer's fused kernel
            attrs += (("fused", tuple(sorted(call.extra["fused"].items()))),)
        extra = dict(bias=call.bias_param)
        inputs = call.input_shapes
    elif kind == ir.SDPA:
        attrs += (("causal", call.causal),)
        inputs = call.input_shapes
    elif kind in (ir.POOL_MAX, ir.POOL_AVG):
        pool = _pool_attrs(call)
        attrs += pool.pop("attrs")
        extra = pool
    if kind in _DATA_ONLY and inputs:
        # IN counts the data a norm / activation / lookup reads, not its weight (a layer_norm's gamma); an
        # embedding's data is its indices, the op's second argument
        attrs += ((("affine", len(call.input_shapes) > 1),) if kind in (ir.LAYER_NORM, ir.BN, ir.NORM) else ())
        inputs = (inputs[1],) if kind == ir.EMBEDDING and len(inputs) > 1 else tuple(inputs[:1])
    return Layer(name=name, kind=kind, input_shapes=tuple(inputs), output_shape=tuple(output), op=call.op,
                 attrs=attrs, **extra)


def _first_api(ops: list[AtenCall]) -> str:
    """The torch entry point of the first arithmetic op (what a tool patching torch functions would see)."""
    return next((op.api for op in ops if op.api and _op_kind(op) is not None), "")


_DATA_ONLY = (ir.LAYER_NORM, ir.BN, ir.NORM, ir.REDUCE_MEAN, ir.SOFTMAX, ir.ACT, ir.EMBEDDING, ir.INTERPOLATE,
              ir.POOL_MAX, ir.POOL_AVG)


def _products(layer: Layer) -> int:
    values = T.terms(layer)
    return values[T.MACC] + values[T.ATTN]


# --------------------------------------------------------------------------------------------- the builder
class _Builder:
    """Walks the recorded calls in execution order and emits layers; parameters go to the module layers that own
    them (each parameter once, however often it is used or tied), the rest become `parameter` rows."""

    def __init__(self, model: nn.Module, aliases: dict[str, str]):
        self.aliases = aliases
        self.layers: list[Layer] = []
        self.params = {id(p): (n, p) for n, p in model.named_parameters()}  # shared parameters once
        self.owned: set[int] = set()
        self.used_names: set[str] = set()
        self.module_calls: dict[str, int] = {}
        self.mismatches: list[str] = []

    # names and ownership
    def unique(self, base: str) -> str:
        name, index = base, 0
        while name in self.used_names:
            index += 1
            name = f"{base}_{index}"
        self.used_names.add(name)
        return name

    def take(self, param_ids) -> tuple[int, int]:
        """(params newly owned, params already owned by an earlier layer)."""
        new = [i for i in dict.fromkeys(param_ids) if i in self.params and i not in self.owned]
        shared = [i for i in dict.fromkeys(param_ids) if i in self.params and i in self.owned]
        self.owned.update(new)
        return (sum(self.params[i][1].numel() for i in new), sum(self.params[i][1].numel() for i in shared))

    def add(self, layer: Layer, param_ids=None, observed: Optional[int] = None) -> None:
        """`param_ids`: the parameters the layer reads (its module's, or those its op read); the layer owns those no
        earlier layer took, the others are `shared_params` (TIED). `read_params` records them all: a layer's
        weight terms are the tensors it reads (a weight-normed conv's `weight_g` and `weight_v`), not its kernel's
        shape."""
        params, shared = self.take(param_ids or ())
        attrs = layer.attrs + ((("shared_params", shared),) if shared else ()) + \
            ((("read_params", params + shared),) if param_ids is not None else ())
        layer = Layer(**{**layer.__dict__, "params": params, "attrs": attrs})
        if observed is not None and observed != _products(layer):
            self.mismatches.append(f"{layer.name} ({layer.kind}): typed {_products(layer):,}, executed {observed:,}")
        self.used_names.add(layer.name)
        self.layers.append(layer)

    # module calls
    def module_call(self, call: Call, inputs=None, output=None) -> None:
        name = call.name
        calls = self.module_calls[name] = self.module_calls.get(name, 0) + 1
        display = name if calls == 1 else f"{name}#{calls}"
        module = call.module
        inputs = call.input_shapes if inputs is None else inputs
        output = call.output_shape if output is None else output
        # the module's parameters its call read (a parametrized weight's originals included); one it holds and did
        # not read stays unowned here and becomes a `parameter` row
        read = {pid for op in call.all_ops() for pid in op.params}
        own_ids = [id(p) for p in module.parameters() if id(p) in read]
        layer = _module_layer(display, module, inputs, output)
        api = _first_api(call.all_ops())
        if layer is not None and api:  # the torch function its forward called (F.relu, F.hardtanh, ...)
            layer = Layer(**{**layer.__dict__, "attrs": layer.attrs + (("api", api),)})
        if layer is not None and layer.kind != ir.UNKNOWN:
            if calls > 1:  # a module called again: a distinct layer of compute, its parameters exist once
                layer = Layer(**{**layer.__dict__, "attrs": layer.attrs + (("shared_with", name),)})
            self.add(layer, own_ids, observed=sum(op.products for op in call.all_ops()))
            return
        if isinstance(module, _SKIPPED_MODULES):
            return
        if not call.calls():
            single = self.single(display, call.ops(), inputs, output, module)
            if single is not None:
                self.add(single, own_ids if single.kind in (ir.LINEAR, ir.CONV, ir.NORM, ir.LAYER_NORM, ir.BN,
                                                            ir.EMBEDDING, ir.ACT) else ())
                return
        self.split(display, call)

    def split(self, owner: str, call: Call) -> None:
        """A call the layer view cannot type: its module calls and its own aten ops, each a layer. A product op
        reading the module's own parameters (a router's weight, stacked experts) owns them."""
        own = {id(p) for p in call.module.parameters(recurse=False)} if call.module is not None else set()
        for item in call.items:
            if isinstance(item, Call):
                self.module_call(item)
            else:
                kind = _op_kind(item)
                if kind is not None:
                    layer = _op_layer(self.unique(f"{owner}.{kind}" if owner else kind), item, kind)
                    reads = item.params if kind in (ir.CONV, ir.LINEAR) else \
                        [pid for pid in item.params if pid in own] if item.products else ()
                    self.add(layer, reads, observed=item.products)

    def is_bias(self, op: AtenCall, output) -> bool:
        """An add of one 1-D parameter as wide as the output's last dimension: a linear layer's bias."""
        params = [self.params[i][1] for i in op.params if i in self.params]
        return bool(output) and len(params) == 1 and params[0].dim() == 1 and params[0].numel() == output[-1]

    def single(self, name: str, ops: list[AtenCall], inputs, output, module=None) -> Optional[Layer]:
        """One layer for a call whose arithmetic is one op, or element-wise only; None if it needs splitting."""
        arithmetic = [(op, _op_kind(op)) for op in ops if _op_kind(op) is not None]
        if not arithmetic:
            return None
        products = [op for op, _ in arithmetic if op.products]
        rest = [op for op, _ in arithmetic if not op.products]
        bias_add = len(rest) == 1 and rest[0].op in ("add", "add_") and self.is_bias(rest[0], output)
        if len(products) == 1 and products[0].op in ("mm", "addmm", "bmm", "linear") and products[0].weighted \
                and module is not None and (not rest or bias_add):
            # a module doing x @ W (+ b) with its own weight (transformers' Conv1D; F.linear on a non-contiguous
            # input, which runs as a matmul and an add of the bias): a linear layer
            linear = Layer(name=name, kind=ir.LINEAR, input_shapes=tuple(inputs), output_shape=tuple(output),
                           op=type(module).__name__, bias=products[0].bias_param or bias_add,
                           attrs=(("api", products[0].api),) if products[0].api else ())
            if inputs and output and _products(linear) == products[0].products:
                return linear
        if len(arithmetic) == 1:
            op, kind = arithmetic[0]
            keep_shapes = kind not in (ir.MATMUL, ir.EINSUM, ir.SDPA, ir.CONV, ir.POOL_MAX, ir.POOL_AVG, ir.EMBEDDING)
            layer = _op_layer(name, op, kind, inputs if keep_shapes else None, output if keep_shapes else None)
            return Layer(**{**layer.__dict__, "op": type(module).__name__ if module is not None else layer.op})
        if products:
            return None
        kinds = [kind for _, kind in arithmetic]
        ops_text = ", ".join(sorted({op.op for op, _ in arithmetic}))
        if ir.LAYER_NORM in kinds:
            kind = ir.LAYER_NORM
        elif any(op.op.startswith(("rsqrt", "native_group_norm", "linalg_vector_norm", "var")) for op, _ in arithmetic):
            kind = ir.NORM  # RMSNorm and friends: mean of squares, rsqrt, scale
        elif module is not None and any(w in type(module).__name__.lower() for w in ("act", "gelu", "silu", "swish")):
            kind = ir.ACT
        elif len(set(kinds)) == 1:
            kind = kinds[0]
        else:
            kind = ir.ELEMENTWISE
        op_text = type(module).__name__ if module is not None else ops_text
        api = _first_api([op for op, _ in arithmetic])
        return Layer(name=name, kind=kind, input_shapes=tuple(inputs[:1] if kind in _DATA_ONLY else inputs),
                     output_shape=tuple(output), op=op_text,
                     attrs=(("aten_ops", ops_text),) + ((("api", api),) if api else ())
                     + (() if module is not None else (("functional", True),)))

    # fx nodes
    def fx_node(self, call: Call, modules: dict[str, nn.Module]) -> None:
        node = call.node
        output = _shape(node.meta.get("tensor_meta")) or ()
        inputs = _arg_shapes(node)
        if node.op == "call_module":
            inner = [c for c in call.calls() if c.name == str(node.target)]
            if inner:
                self.module_call(inner[0], inputs, output)
            else:  # no module call seen (hooks disabled): type it from the module alone
                layer = _module_layer(str(node.target), modules[str(node.target)], inputs, output)
                if layer is not None:
                    self.add(layer, [id(p) for p in modules[str(node.target)].parameters()])
            return
        if node.op not in ("call_function", "call_method"):
            return
        name = self.aliases.get(node.name, node.name)
        typed = _function_layer(name, node, inputs, output)
        ops = call.all_ops()
        observed = sum(op.products for op in ops)
        api = _first_api(ops)
        if typed is not None and api:
            typed = Layer(**{**typed.__dict__, "attrs": typed.attrs + (("api", api),)})
        if typed is not None and typed.kind not in (ir.UNKNOWN, ir.MATMUL):
            self.add(typed, [p for op in ops for p in op.params] if typed.kind in (ir.LINEAR, ir.CONV) else (),
                     observed=observed)
            return
        if call.calls():  # a wrapped function that calls modules
            self.split(name, call)
            return
        single = self.single(name, ops, inputs, output)
        if single is not None:
            fn = _function_name(node)
            if fn == "einsum" and single.kind == ir.MATMUL:
                single = Layer(**{**single.__dict__, "kind": ir.EINSUM, "op": "einsum"})
            self.add(single, observed=observed)
        elif any(_op_kind(op) for op in ops):
            self.split(name, call)

    # the two laws
    def op_rows(self, root: Call) -> tuple[list[Layer], list[str]]:
        """One row per op the table has no formula for (`unsupported_op`) or that has no multiply-accumulate
        convention (`no_macc_convention`), named by the op, with where it ran; and a warning per unsupported op."""
        found: dict[str, list[tuple[str, AtenCall]]] = {}
        for owner, op in _ops_with_owner(root):
            if op.category in (aten_ops.UNSUPPORTED, aten_ops.NO_MACC_CONVENTION):
                found.setdefault(op.op, []).append((owner, op))
        rows, warnings = [], []
        for name, calls in found.items():
            owners = list(dict.fromkeys(owner or "<forward>" for owner, _ in calls))
            where = ", ".join(owners[:3]) + (f" and {len(owners) - 3} more" if len(owners) > 3 else "")
            first = calls[0][1]
            unsupported = first.category == aten_ops.UNSUPPORTED
            label = name if "::" in name else f"aten.{name}"
            rule = aten_ops.rule(name)
            says = (f"{label} ran {len(calls)} time{'s' if len(calls) > 1 else ''} (in {where}); the op table "
                    "(conventions/aten_ops.py) has no entry for it, so whatever it multiplies is not counted"
                    if unsupported else f"{label} ran {len(calls)} time{'s' if len(calls) > 1 else ''} (in {where}): "
                    f"{rule.says}; left out of MACC")
            rows.append(Layer(name=self.unique(label), kind=ir.UNSUPPORTED_OP if unsupported else
                              ir.NO_MACC_CONVENTION, input_shapes=first.input_shapes[:1],
                              output_shape=first.output_shape, op=name,
                              attrs=(("functional", True), ("calls", len(calls)), ("why", says))))
            if unsupported:
                warnings.append(f"conservation gap: {says} (an `unsupported_op` row)")
        return rows, warnings

    def finish(self, root: Call, extra_notes: tuple[str, ...], model_params: int,
               recorder: Recorder) -> tuple[list[Layer], tuple, Optional[int]]:
        """Parameter rows, op rows, then the two laws against their oracles: `model_params` (sum of p.numel() over
        model.parameters(), counted by the caller) and the op table's products of every op executed. Returns the
        layers, the notes and the active parameters per token (None when no routing ran)."""
        ops = root.all_ops()
        used = {pid for op in ops for pid in op.params}
        for pid, (qualified, param) in self.params.items():
            if pid not in self.owned:
                self.owned.add(pid)
                self.layers.append(Layer(name=qualified, kind=ir.PARAMETER, input_shapes=(),
                                         output_shape=tuple(param.shape), op="Parameter", params=param.numel(),
                                         attrs=(("executed", pid in used),)))
        rows, warnings = self.op_rows(root)
        self.layers += rows
        notes = list(extra_notes) + warnings
        executed = sum(op.products for op in ops if op.category == aten_ops.PRODUCT)
        typed = sum(_products(layer) for layer in self.layers)
        printed = sum(layer_counts(layer).params for layer in self.layers)  # what `formulas` prints as the total
        if executed != typed or model_params != printed:
            why = (f"conservation gap: the forward executed {executed:,} multiply-accumulates and holds "
                   f"{model_params:,} parameters; the layer rows describe {typed:,} and {printed:,}")
            if self.mismatches:
                why += "; layers whose type disagrees with their aten ops: " + "; ".join(self.mismatches[:5])
            self.layers.append(Layer(name="__gap__", kind=ir.GAP, input_shapes=(), output_shape=(), op="gap",
                                     params=model_params - printed,
                                     attrs=(("macc", executed - typed), ("why", why))))
            notes.append(why)
        active, note = self.active_params(recorder, model_params)
        if note:
            notes.append(note)
        return self.layers, tuple(notes), active

    def active_params(self, recorder: Recorder, total: int) -> tuple[Optional[int], str]:
        """Parameters one token's forward multiplies: every parameter, except that a parameter used only by routed
        ops (experts) counts at the share of it a token multiplies (top-k of E experts: k/E). None without
        routing."""
        routed = {pid: share for pid, share in recorder.uses.items() if pid not in recorder.dense}
        left_out = round(sum(self.params[pid][1].numel() * (1 - min(share, 1)) for pid, share in routed.items()))
        if not left_out:  # no routing, or every row of the routed ops went through every weight
            return None, ""
        active = total - left_out
        return active, (f"mixture of experts: {active:,} of {total:,} parameters active per token ({len(routed)} "
                        f"parameter tensors only routed rows multiply, counted at the share a token uses)")


def _ops_with_owner(call: Call, owner: str = ""):
    """(name of the innermost module call or fx node, op) for every op under `call`, in execution order."""
    for item in call.items:
        if isinstance(item, Call):
            yield from _ops_with_owner(item, item.name)
        else:
            yield owner, item


class _NodeProp(ShapeProp):
    """ShapeProp that opens a Call per fx node on the recorder, so each aten op is filed under its node."""

    def __init__(self, module: fx.GraphModule, recorder: Recorder):
        super().__init__(module)
        self.recorder = recorder
        self.node_calls: list[Call] = []

    def run_node(self, n: fx.Node):
        call = Call(n.name, node=n)
        self.recorder.stack[-1].items.append(call)
        self.recorder.stack.append(call)
        try:
            return super().run_node(n)
        finally:
            self.recorder.stack.pop()
            self.node_calls.append(call)


def _example(module: nn.Module, input_shape: tuple[int, ...], input_dtype=None) -> torch.Tensor:
    """Zeros of the input shape on the module's own device (meta for a model built without memory)."""
    first = next(iter(module.parameters()), None)
    device = first.device if first is not None else torch.device("cpu")
    return torch.zeros(*input_shape, dtype=input_dtype or torch.float32, device=device)


def trace_fx(module: nn.Module, example: torch.Tensor, aliases: dict[str, str]) -> tuple[_Builder, Call, Recorder]:
    graph = fx.symbolic_trace(module)
    root = Call("")
    recorder = Recorder(root, module, (example,))
    prop = _NodeProp(graph, recorder)
    with torch.enable_grad(), recorder, ApiCalls(recorder), ModuleCalls(graph, recorder):
        prop.propagate(example)
    builder = _Builder(module, aliases)
    modules = dict(graph.named_modules())
    for call in root.calls():
        builder.fx_node(call, modules)
    return builder, root, recorder


def trace_calls(module: nn.Module, example: torch.Tensor) -> tuple[_Builder, Call, Recorder]:
    """For models fx cannot trace: module calls (global forward hooks) and the aten ops inside each."""
    root = Call("<forward>")
    recorder = Recorder(root, module, (example,))
    with torch.enable_grad(), recorder, ApiCalls(recorder), ModuleCalls(module, recorder):
        module(example)
    builder = _Builder(module, {})
    for call in root.calls():
        builder.split("", call) if call.name == "" else builder.module_call(call)
    return builder, root, recorder


def from_module(module: nn.Module, input_shape: tuple[int, ...], name: str = "model",
                aliases: Optional[dict[str, str]] = None, input_dtype: Optional[torch.dtype] = None) -> Model:
    module = module.eval()
    if not list(module.children()) and type(module).__module__.startswith("torch.nn"):
        # A bare nn.Conv2d would be traced *through* (into F.conv2d); keep it one layer, named after its type.
        module = nn.Sequential(OrderedDict([(type(module).__name__.lower(), module)]))
    example = _example(module, input_shape, input_dtype)
    notes: tuple[str, ...] = ()
    try:
        builder, root, recorder = trace_fx(module, example, aliases or {})
    except Exception as exc:  # fx cannot trace data-dependent Python; module calls still show every module
        builder, root, recorder = trace_calls(module, example)
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
        notes = (f"torch.fx could not trace the model ({type(exc).__name__}: {first}); read through its module "
                 "calls, with the code between them typed from its aten ops",)
    # the params law's oracle: every tensor parameters() yields, once (parametrizations' original0/original1 and
    # legacy weight_g/weight_v included), counted here and not by the code that built the layers
    model_params = sum(p.numel() for p in module.parameters())
    layers, notes, active = builder.finish(root, notes, model_params, recorder)
    return Model(name=name, framework="torch", input_shape=tuple(input_shape), layers=tuple(layers), notes=notes,
                 active_params=active)


def build(factory: Callable[[], nn.Module]) -> nn.Module:
    module = factory()
    if not isinstance(module, nn.Module):
        raise TypeError(f"factory returned {type(module).__name__}, not a torch nn.Module")
    return module
