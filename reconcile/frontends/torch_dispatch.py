"""The dispatch-level view of one forward: every aten op, with its shapes, the parameters it read and the
multiply-accumulates it performs, filed under the fx node or module call that issued it.

Why: a layer view built from modules and fx nodes cannot type everything a current model runs (an einsum, a
`torch.fx.wrap`-ed window attention, a `mean` used as pooling, a class token added in `forward`). Below autograd,
every one of those is a handful of aten ops (`mm`, `addmm`, `bmm`, `baddbmm`, `convolution`, the
scaled-dot-product kernels, ...), as torch/utils/flop_counter.py's `FlopCounterMode` sees them. The front end
uses this record to type what the layer view left open and to check the two conservation laws (params ==
`parameters()`, MACC == the products executed).

The forward runs with grad enabled (parameters requiring grad, as built): the fused inference fast paths of
`nn.MultiheadAttention` and `nn.TransformerEncoderLayer` (`_native_multi_head_attention`,
`_transformer_encoder_layer_fwd`) are then not taken and their products are visible op by op.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

Shape = tuple[int, ...]


def _shape(value: Any) -> Shape:
    return tuple(int(d) for d in value.shape) if isinstance(value, torch.Tensor) else ()


@dataclass
class AtenCall:
    """One dispatched aten op."""

    op: str  # overload packet without the namespace: "addmm", "_scaled_dot_product_flash_attention_for_cpu"
    input_shapes: tuple[Shape, ...]
    output_shape: Shape
    products: int = 0  # multiply-accumulates it performs (0 for ops that multiply nothing together)
    weighted: bool = False  # one factor of the product is a parameter (or a view of one)
    bias_param: bool = False  # addmm / baddbmm / convolution adding a parameter bias
    causal: bool = False
    params: tuple[int, ...] = ()  # ids of the parameters it read, directly or through views
    args: tuple = ()  # positional non-tensor arguments (strides, kernel sizes, ...)
    api: str = ""  # the torch-level call that issued it: "torch.matmul", "Tensor.softmax", "F.layer_norm", ...
    extra: dict = field(default_factory=dict)  # op-specific facts (conv kernel/stride, fused attention split)


@dataclass
class Call:
    """A module call or an fx node: what it issued, in order (nested calls and aten ops)."""

    name: str
    module: Optional[torch.nn.Module] = None
    node: Any = None  # the fx.Node, when the call is an fx node
    input_shapes: tuple[Shape, ...] = ()
    output_shape: Shape = ()
    items: list[Union["Call", AtenCall]] = field(default_factory=list)

    def calls(self) -> list["Call"]:
        return [item for item in self.items if isinstance(item, Call)]

    def ops(self) -> list[AtenCall]:
        return [item for item in self.items if isinstance(item, AtenCall)]

    def all_ops(self) -> list[AtenCall]:
        out: list[AtenCall] = []
        for item in self.items:
            out += item.all_ops() if isinstance(item, Call) else [item]
        return out


# Ops whose outputs alias or copy their input unchanged: a view of a parameter is still that parameter.
_PASS_THROUGH = {"t", "transpose", "permute", "view", "_unsafe_view", "reshape", "_reshape_alias", "expand",
                 "expand_as", "unsqueeze", "squeeze", "slice", "select", "alias", "detach", "clone", "contiguous",
                 "_to_copy", "to", "unbind", "split", "split_with_sizes", "chunk", "as_strided", "flatten",
                 "narrow", "view_as", "lift_fresh", "repeat", "index", "index_select", "numpy_T", "mT", "_conj",
                 "unflatten", "movedim", "swapaxes", "lift_fresh_copy"}


def _scaled_dot_product(call: AtenCall, tensors: list, args: tuple, kwargs: dict) -> None:
    q, k, v = (_shape(t) for t in tensors[:3])
    rows = math.prod(q[:-1])
    call.products = rows * k[-2] * (q[-1] + v[-1])
    call.input_shapes = (q, k, v)
    call.causal = bool(kwargs.get("is_causal", args[4] if len(args) > 4 and isinstance(args[4], bool) else False))


def _native_mha(call: AtenCall, tensors: list, args: tuple, kwargs: dict) -> None:
    # aten._native_multi_head_attention(query, key, value, embed_dim, num_head, qkv_weight, qkv_bias, ...)
    q, k = _shape(tensors[0]), _shape(tensors[1])
    embed = q[-1]
    q_rows, kv_rows = math.prod(q[:-1]), math.prod(k[:-1])
    projections = (2 * q_rows + 2 * kv_rows) * embed * embed
    attention = 2 * math.prod(q[:-1]) * k[-2] * embed
    call.products = projections + attention
    call.weighted = True
    call.extra = {"fused": {"weighted": projections, "activation": attention}}


def _count(call: AtenCall, tensors: list, args: tuple, kwargs: dict, weighted_ids) -> None:
    """Set `products` (and whether a factor is a weight) of the product ops; leave the rest at 0.
    `weighted_ids`: ids of the tensors that are parameters or views of one."""
    op = call.op
    derived = [id(t) in weighted_ids for t in tensors]
    if op in ("mm", "addmm", "bmm", "baddbmm"):
        a, b = (tensors[1], tensors[2]) if op in ("addmm", "baddbmm") else (tensors[0], tensors[1])
        sa, sb = _shape(a), _shape(b)
        call.products = math.prod(sa[:-1]) * sb[-1] * sa[-1]
        call.weighted = id(a) in weighted_ids or id(b) in weighted_ids
        call.bias_param = op in ("addmm", "baddbmm") and derived[0]
        call.input_shapes = (sa, sb)
    elif op in ("convolution", "_convolution", "convolution_overrideable", "mkldnn_convolution"):
        x, w = _shape(tensors[0]), _shape(tensors[1])
        transposed = bool(args[6]) if len(args) > 6 else False
        out = call.output_shape
        spatial = x[2:] if transposed else out[2:]
        call.products = x[0] * math.prod(w) * math.prod(spatial)
        call.weighted = id(tensors[1]) in weighted_ids
        has_bias = len(tensors) > 2 and tensors[2] is not None and len(args) > 2
        call.bias_param = has_bias and id(tensors[2]) in weighted_ids
        call.extra = {"kernel": w[2:], "stride": tuple(args[3]) if len(args) > 3 else (),
                      "padding": tuple(args[4]) if len(args) > 4 else (),
                      "dilation": tuple(args[5]) if len(args) > 5 else (), "transposed": transposed,
                      "groups": int(args[8]) if len(args) > 8 else 1, "weight_shape": w}
        call.input_shapes = (x,)
    elif op.startswith("_scaled_dot_product") and op.endswith(("attention", "attention_for_cpu")):
        _scaled_dot_product(call, tensors, args, kwargs)
    elif op == "_native_multi_head_attention":
        _native_mha(call, tensors, args, kwargs)


# Fused kernels with products this module has no formula for: the front end says so in the model's notes.
FUSED_WITHOUT_FORMULA = ("_transformer_encoder_layer_fwd",)


class Recorder(TorchDispatchMode):
    """Files every aten op under the innermost open Call (an fx node, then the module calls inside it)."""

    def __init__(self, root: Call, parameters: dict[int, str]):
        super().__init__()
        self.stack: list[Call] = [root]
        self.parameters = parameters  # id -> qualified name
        self.derived: dict[int, set[int]] = {pid: {pid} for pid in parameters}  # tensor id -> parameter ids
        self.keep: list = []  # tensors whose ids are in `derived` stay alive so ids are not reused
        self.api: list[str] = []  # the torch-level calls open right now (outermost first), see ApiCalls

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        op = func._overloadpacket.__name__
        flat = list(args) + list(kwargs.values())
        tensors = []
        for a in flat:
            if isinstance(a, torch.Tensor):
                tensors.append(a)
            elif isinstance(a, (list, tuple)) and a and isinstance(a[0], torch.Tensor):
                tensors.extend(t for t in a if isinstance(t, torch.Tensor))
        read = sorted({pid for t in tensors for pid in self.derived.get(id(t), ())})
        outputs = out if isinstance(out, (tuple, list)) else (out,)
        if read and op in _PASS_THROUGH:
            for o in outputs:
                if isinstance(o, torch.Tensor):
                    self.derived[id(o)] = set(read)
                    self.keep.append(o)
        first_out = next((o for o in outputs if isinstance(o, torch.Tensor)), None)
        call = AtenCall(op, tuple(_shape(t) for t in tensors), _shape(first_out), params=tuple(read),
                        args=tuple(a for a in args if not isinstance(a, torch.Tensor)),
                        api=self.api[0] if self.api else "")
        _count(call, [a for a in args if isinstance(a, torch.Tensor) or a is None], args, kwargs, self.derived)
        self.stack[-1].items.append(call)
        return out


def api_name(func: Any) -> str:
    """"torch.matmul", "F.softmax", "Tensor.softmax", "Tensor.__add__": which torch entry point was called, the
    thing a tool that patches torch functions (calflops, DeepSpeed, ptflops) does or does not see."""
    name = getattr(func, "__name__", str(func))
    owner = getattr(func, "__module__", None) or ""
    qualified = getattr(func, "__qualname__", name)
    if qualified.startswith(("Tensor.", "TensorBase.", "_TensorBase.")) or owner == "torch._tensor":
        return "Tensor." + name
    if owner.startswith("torch.nn.functional"):
        return "F." + name
    return "torch." + name


class ApiCalls(TorchFunctionMode):
    """Records the outermost torch-level call around each aten op (a TorchFunctionMode sees torch.matmul,
    F.softmax, Tensor.__add__, ... before they dispatch)."""

    def __init__(self, recorder: "Recorder"):
        super().__init__()
        self.recorder = recorder

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.recorder.api.append(api_name(func))
        try:
            return func(*args, **(kwargs or {}))
        finally:
            self.recorder.api.pop()


class ModuleCalls:
    """Global forward hooks (as torch/utils/module_tracker.py registers them) that open a Call per module call of
    `model`, nested under whatever Call is open on the recorder."""

    def __init__(self, model: torch.nn.Module, recorder: Recorder):
        self.names = {id(m): n for n, m in model.named_modules()}
        self.recorder = recorder
        self.handles: list = []

    def __enter__(self) -> "ModuleCalls":
        from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

        def push(module, args):
            name = self.names.get(id(module))
            if name is None:
                return
            call = Call(name, module, input_shapes=tuple(_shape(a) for a in args if isinstance(a, torch.Tensor)))
            self.recorder.stack[-1].items.append(call)
            self.recorder.stack.append(call)

        def pop(module, args, out):
            if self.names.get(id(module)) is None or len(self.recorder.stack) < 2:
                return
            call = self.recorder.stack.pop()
            call.output_shape = first_tensor_shape(out)

        self.handles = [register_module_forward_pre_hook(push), register_module_forward_hook(pop)]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.remove()


def first_tensor_shape(value: Any) -> Shape:
    if isinstance(value, torch.Tensor):
        return _shape(value)
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        for item in value:
            shape = first_tensor_shape(item)
            if shape:
                return shape
    return ()
