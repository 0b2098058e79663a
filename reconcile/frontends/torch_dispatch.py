"""The dispatch-level view of one forward: every aten op, with its shapes, the parameters it read and the
multiply-accumulates it performs (by the op table, conventions/aten_ops.py), filed under the fx node or module call
that issued it.

Why: a layer view built from modules and fx nodes cannot type everything a current model runs (an einsum, a
`torch.fx.wrap`-ed window attention, a `mean` used as pooling, a class token added in `forward`). Below autograd,
every one of those is a handful of aten ops (`mm`, `addmm`, `bmm`, `baddbmm`, `convolution`, the
scaled-dot-product kernels, grouped matmuls, recurrent kernels, ...), as torch/utils/flop_counter.py's
`FlopCounterMode` sees them. The front end uses this record to type what the layer view left open and to check
the two conservation laws (params == `parameters()`, MACC == the products the op table counts).

Tensors are tagged as the forward runs: with the parameters their values come from (through views, gathers and
arithmetic on parameters alone, so a weight-normed weight reads `weight_g` and `weight_v`), whether they derive
from the model's input, and whether their rows were picked by data (a router's choice of experts). A product
whose rows were routed uses, per token, only the share of its weights the routed rows multiply: the recorder
sums that share per parameter, the mixture-of-experts models' active parameters.

The forward runs with grad enabled (parameters requiring grad, as built): the fused inference fast paths of
`nn.MultiheadAttention` and `nn.TransformerEncoderLayer` (`_native_multi_head_attention`,
`_transformer_encoder_layer_fwd`) are then not taken and their products are visible op by op.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Optional, Union

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from conventions import aten_ops

Shape = tuple[int, ...]


def _shape(value: Any) -> Shape:
    return tuple(int(d) for d in value.shape) if isinstance(value, torch.Tensor) else ()


@dataclass
class AtenCall:
    """One dispatched aten op."""

    op: str  # aten overload packet: "addmm", "_scaled_dot_product_flash_attention_for_cpu"; else "namespace::op"
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
    category: str = aten_ops.UNSUPPORTED  # the op table's category (product, product-free, ...)
    routed: bool = False  # its rows were routed (mixture-of-experts experts)


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


# Ops whose outputs alias, copy or gather their input unchanged: a view of a parameter is still that parameter, and
# a gather of its rows (experts picked by a router) reads those rows.
_PASS_THROUGH = {"t", "transpose", "permute", "view", "_unsafe_view", "reshape", "_reshape_alias", "expand",
                 "expand_as", "unsqueeze", "squeeze", "slice", "select", "alias", "detach", "clone", "contiguous",
                 "_to_copy", "to", "unbind", "split", "split_with_sizes", "chunk", "as_strided", "flatten",
                 "narrow", "view_as", "lift_fresh", "repeat", "index", "index_select", "numpy_T", "mT", "_conj",
                 "unflatten", "movedim", "swapaxes", "lift_fresh_copy", "_unsafe_index", "gather", "take",
                 "repeat_interleave"}
# Gathers: rows picked by an index tensor. Picked by data (an index computed from the input, as a router's choice
# of experts is), their output is routed.
_GATHERS = {"index", "index_select", "gather", "take", "_unsafe_index", "masked_select"}
# Scatters: rows put back in place (a mixture-of-experts layer's output, token by token): no longer routed.
_SCATTERS = {"index_add", "index_copy", "index_put", "_index_put_impl", "_unsafe_index_put", "scatter",
             "scatter_add", "scatter_reduce", "index_reduce", "masked_scatter"}
# A routing decision: each token's top-k experts (or its one expert) along the last dimension.
_ROUTERS = {"topk", "argmax"}


@dataclass(frozen=True)
class Tag:
    """What the recorder knows of a live tensor."""

    params: frozenset = frozenset()  # ids of the parameters its values come from, through views or weight maths
    tainted: bool = False  # computed from the model's input (an activation), not from parameters and buffers alone
    routed: bool = False  # its rows were picked by data (a router's choice), or computed row by row from such rows


class Recorder(TorchDispatchMode):
    """Files every aten op under the innermost open Call (an fx node, then the module calls inside it), with its
    products from the op table (conventions/aten_ops.py), the parameters it read and, for mixture-of-experts
    routing, how much of each parameter one token multiplies."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # The recorder never runs under torch.compile: without torch's guard (torch/utils/_python_dispatch.py
        # TorchDispatchMode.__init_subclass__ wraps __torch_dispatch__ in torch._disable_dynamo) its first op does
        # not import torch._dynamo, 1-2 s of every trace.
        return False

    def __init__(self, root: Call, model: torch.nn.Module, inputs: tuple = ()):
        super().__init__()
        self.stack: list[Call] = [root]
        self.parameters = {id(p): (n, p) for n, p in model.named_parameters()}  # id -> (qualified name, tensor)
        self.tags: dict[int, Tag] = {}
        self.alive: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # id -> tensor, for live ids only
        for pid, (_, param) in self.parameters.items():
            self.tag(param, Tag(params=frozenset({pid})))
        for tensor in inputs:
            self.tag(tensor, Tag(tainted=True))
        self.api: list[str] = []  # the torch-level calls open right now (outermost first), see ApiCalls
        self.routing_rows: Optional[int] = None  # tokens of the latest routing decision (topk / argmax)
        self.uses: dict[int, Fraction] = {}  # parameter id -> share of it one token multiplies, over routed ops
        self.dense: set[int] = set()  # parameters some op used whole, for every token

    def tag(self, tensor: torch.Tensor, tag: Tag) -> None:
        self.tags[id(tensor)] = tag
        self.alive[id(tensor)] = tensor

    def tag_of(self, tensor: Any) -> Tag:
        if isinstance(tensor, torch.Tensor) and self.alive.get(id(tensor)) is tensor:
            return self.tags[id(tensor)]
        return _NO_TAG

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        op = func._overloadpacket.__name__
        namespace = getattr(func, "namespace", "aten")
        op = op if namespace == "aten" else f"{namespace}::{op}"
        tensors = _flat_tensors(list(args) + list(kwargs.values()))
        tags = [self.tag_of(t) for t in tensors]
        read = sorted({pid for tag in tags for pid in tag.params})
        outputs = [o for o in (out if isinstance(out, (tuple, list)) else (out,)) if isinstance(o, torch.Tensor)]
        first_out = outputs[0] if outputs else None
        rule = aten_ops.rule(op)
        call = AtenCall(op, tuple(_shape(t) for t in tensors), _shape(first_out), params=tuple(read),
                        args=tuple(a for a in args if not isinstance(a, torch.Tensor)),
                        api=self.api[0] if self.api else "",
                        category=rule.category if rule is not None else aten_ops.UNSUPPORTED)
        if rule is not None and rule.formula is not None:
            operands = (_operands(args), {k: _operands(v) for k, v in kwargs.items()})
            call.products = aten_ops.products(op, *operands, call.output_shape)
            _describe(call, rule, args, kwargs, operands, self.tag_of)
        routed = self._route(op, rule, args, tensors, tags, call)
        self._propagate(op, tensors, tags, outputs, read, routed, rule)
        self.stack[-1].items.append(call)
        return out

    def _route(self, op, rule, args, tensors, tags, call: AtenCall) -> bool:
        """Whether the op's rows were routed; notes routing decisions and each parameter's use per token."""
        tainted = any(tag.tainted for tag in tags)
        if op in _ROUTERS and tainted and tensors and tensors[0].dim() > 0:
            self.routing_rows = max(1, tensors[0].numel() // max(1, tensors[0].shape[-1]))
        if op in _PASS_THROUGH:
            return False
        grouped = rule is not None and rule.formula is not None and rule.routed
        routed = (grouped or any(tag.routed for tag in tags)) and self.routing_rows is not None
        factor_positions = _factor_positions(rule, args)
        for position, (tensor, tag) in enumerate(zip(tensors, tags)):
            if not tag.params:
                continue
            factor = position in factor_positions  # a product's operand (0 products: an expert no row reached)
            if not routed or not (factor or tag.routed):  # used whole: a dense layer, or a norm's weight
                self.dense.update(tag.params)
                continue
            # elements of the parameter(s) this operand holds that the op used: its products against a factor,
            # else one per element of the operand (a routed bias added)
            used = call.products if factor else tensor.numel()
            held = sum(self.parameters[pid][1].numel() for pid in tag.params)
            for pid in tag.params:
                size = self.parameters[pid][1].numel()
                share = Fraction(used * size, held) / (self.routing_rows * size)
                self.uses[pid] = self.uses.get(pid, Fraction(0)) + share
        call.routed = routed
        return routed

    def _propagate(self, op, tensors, tags, outputs, read, routed, rule) -> None:
        tainted = any(tag.tainted for tag in tags)
        if not outputs or not (read or tainted or routed):
            return
        # parameters flow through views and gathers, and through arithmetic on parameters alone (weight norm,
        # spectral norm's division): a product's output is new data
        params = frozenset(read) if op in _PASS_THROUGH or (not tainted and (rule is None or rule.formula is None)) \
            else frozenset()
        # rows picked by data are routed; so are views and splits of routed rows, and what is computed row by row
        # from them (the same number of rows)
        picked = op in _GATHERS and any(tag.tainted for tag in tags[1:])
        viewed = op in _PASS_THROUGH and any(tag.routed for tag in tags)
        routed_rows = {t.shape[0] for t, tag in zip(tensors, tags) if tag.routed and t.dim() > 0} \
            if _base(op) not in _SCATTERS else set()
        for o in outputs:
            keeps_rows = o.dim() > 0 and o.shape[0] in routed_rows
            self.tag(o, Tag(params=params, tainted=tainted, routed=picked or viewed or keeps_rows))


_NO_TAG = Tag()


def _base(op: str) -> str:
    """`index_add_` -> `index_add`: an in-place op is its out-of-place op."""
    return op[:-1] if op.endswith("_") and not op.endswith("__") else op


def _flat_tensors(values: list) -> list[torch.Tensor]:
    tensors = []
    for a in values:
        if isinstance(a, torch.Tensor):
            tensors.append(a)
        elif isinstance(a, (list, tuple)):
            tensors.extend(t for t in a if isinstance(t, torch.Tensor))
    return tensors


def _operands(value: Any) -> Any:
    """An argument as the op table's formulas read it: tensors become `Arg` (shape, and the last element of a
    small 1-D integer tensor on a real device, i.e. grouped-matmul offsets)."""
    if isinstance(value, torch.Tensor):
        last = None
        if value.dim() == 1 and not value.is_floating_point() and not value.is_complex() and value.numel() \
                and value.device.type != "meta" and value.numel() <= 1 << 16:
            try:
                last = int(value[-1])
            except (RuntimeError, NotImplementedError):  # a tensor whose values cannot be read here (sparse, ...)
                last = None
        return aten_ops.Arg(_shape(value), last)
    if isinstance(value, (list, tuple)):
        return type(value)(_operands(v) for v in value) if not hasattr(value, "_fields") else value
    return value


def _factor_positions(rule, args) -> set[int]:
    """Positions, among the op's flattened tensor arguments, of the tensors it multiplies."""
    if rule is None or rule.formula is None:
        return set()
    positions, index = set(), 0
    for position, a in enumerate(args):
        count = 1 if isinstance(a, torch.Tensor) else \
            sum(isinstance(t, torch.Tensor) for t in a) if isinstance(a, (list, tuple)) else 0
        if rule.factors is None or position in rule.factors:
            positions.update(range(index, index + count))
        index += count
    return positions


_IS_CAUSAL_AT = {"_scaled_dot_product_efficient_attention": 6, "_scaled_dot_product_cudnn_attention": 6,
                 "_scaled_dot_product_attention_math": 5, "_scaled_dot_product_fused_attention_overrideable": 5,
                 "scaled_dot_product_attention": 5, "_scaled_dot_product_attention_math_for_mps": 5}


def _describe(call: AtenCall, rule, args, kwargs, operands, tag_of) -> None:
    """What the layer typing reads of a product op: whether a factor is a weight, a parameter bias, the operand
    shapes, a convolution's geometry, causal attention, a fused kernel's split."""
    factors = [args[i] for i in (rule.factors if rule.factors is not None else range(len(args)))
               if i < len(args)]
    call.weighted = any(tag_of(t).params for t in _flat_tensors(factors))
    bias = args[rule.bias] if rule.bias is not None and rule.bias < len(args) else kwargs.get("bias")
    call.bias_param = isinstance(bias, torch.Tensor) and bool(tag_of(bias).params)
    op = call.op
    if rule.split is not None:
        weighted, activation = rule.split(*operands, call.output_shape)
        call.extra = {"fused": {"weighted": weighted, "activation": activation}}
        call.weighted = True
    elif op.startswith(("_scaled_dot_product", "scaled_dot_product", "_triton_scaled")):
        call.input_shapes = tuple(_shape(t) for t in args[:3])
        at = _IS_CAUSAL_AT.get(op, 4)  # native_functions.yaml: where each kernel takes `is_causal`
        call.causal = bool(kwargs.get("is_causal", args[at] if len(args) > at and isinstance(args[at], bool)
                                      else False))
    elif op in ("convolution", "_convolution", "convolution_overrideable"):
        x, w = _shape(args[0]), _shape(args[1])
        transposed = bool(args[6]) if len(args) > 6 else False
        call.extra = {"kernel": w[2:], "stride": tuple(args[3]) if len(args) > 3 else (),
                      "padding": tuple(args[4]) if len(args) > 4 else (),
                      "dilation": tuple(args[5]) if len(args) > 5 else (), "transposed": transposed,
                      "groups": int(args[8]) if len(args) > 8 else 1, "weight_shape": w}
        call.input_shapes = (x,)
    elif rule.factors is not None and len(rule.factors) == 2 and rule.factors[1] < len(args):
        call.input_shapes = tuple(_shape(args[i]) for i in rule.factors if isinstance(args[i], torch.Tensor))


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
            # a PackedSequence (an RNN's packed input) reads as its data: (sum of the batch sizes, features)
            shapes = tuple(_shape(a if isinstance(a, torch.Tensor) else a.data) for a in args
                           if isinstance(a, torch.Tensor) or isinstance(getattr(a, "batch_sizes", None), torch.Tensor))
            call = Call(name, module, input_shapes=shapes)
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
