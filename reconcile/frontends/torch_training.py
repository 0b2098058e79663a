"""Training compute, measured: one forward and one backward pass traced at the dispatch level, every product
filed under the layer whose forward created it and split into the three passes of training:

  forward   the products the forward executed (MACC against a weight, ATTN between two activations)
  dgrad     the input-gradient pass: d loss / d input of each product (grad x weight^T for a weighted layer; both
            factors' gradients of an attention product)
  wgrad     the weight-gradient pass: d loss / d weight (input^T x grad)

How backward ops are attributed: the forward runs under a TorchDispatchMode (frontends/torch_dispatch.py's
Recorder, which files each aten op under the module call that issued it and knows which tensors are parameters or
views of one). After each forward op has returned through autograd, its outputs carry the autograd node that will
differentiate it; the node is tagged with the op's index (`Node.metadata`). During backward the same mode asks
autograd which node is running (`torch._C._current_autograd_node()`), so every backward aten op is filed under
the forward op, and thus the layer, that created it. Within a node, a product that reads the weight (or a view of
it) is the input gradient, one that does not is the weight gradient; `convolution_backward` computes both in one
op, split by its output mask; a fused scaled-dot-product backward computes the four gradient products of QK^T and
AV (2 x its forward products; FlopCounterMode's formula also counts the scores the kernel recomputes, not
counted here). Nothing depends on values: it runs on the meta device, so a 175B-parameter model needs no memory.

What autograd skips is measured, not assumed: a parameter with requires_grad False (frozen) gets no weight
gradient; a layer whose input needs no gradient (the first layer: its input is data; a layer after frozen
layers only) gets no input gradient. An embedding lookup has no product; its weight gradient is a scatter-add of
the output gradient into the table (`embedding_dense_backward`: one addition per output element, tokens x d),
recorded as EMBED_WGRAD additions, not multiply-accumulates.

Loss: the sum of every floating-point tensor the model returns (logits; BERT: the last hidden state and the
pooler output). The loss adds no products (a cross-entropy over the logits would add a log-softmax, also no
products), so the counts do not depend on this choice.

Recomputation (activation checkpointing) is accounted from the measured forward, not measured again: `full`
repeats the forward products of every block (a composite module held in an nn.ModuleList or nn.Sequential: the
transformer layers, a ResNet's bottlenecks), as Megatron-LM and transformers' gradient checkpointing do;
`selective` repeats only the attention core (QK^T and AV, Korthikanti et al. 2022, "Reducing Activation
Recomputation in Large Transformer Models", §4). tests/test_training.py checks the full case against
torch.utils.checkpoint measured by FlopCounterMode.
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch
import torch.nn as nn

from conventions.training import TrainingLayer, TrainingTrace

from .torch_dispatch import AtenCall, Call, ModuleCalls, Recorder

NONE, FULL, SELECTIVE = "none", "full", "selective"
RECOMPUTE_MODES = (NONE, FULL, SELECTIVE)
LOSS = "sum of every floating-point output tensor"
ROOT = "<forward>"  # the Call of code outside every module (the model's own forward body is its module call "")

_SDPA_BACKWARD = ("_scaled_dot_product_flash_attention_for_cpu_backward",
                  "_scaled_dot_product_flash_attention_backward",
                  "_scaled_dot_product_efficient_attention_backward", "_scaled_dot_product_cudnn_attention_backward",
                  "_flash_attention_backward", "_efficient_attention_backward")
_PRODUCT_OPS = ("mm", "addmm", "bmm", "baddbmm")
_PRODUCT_HINTS = ("mm", "conv", "attention", "einsum", "matmul")  # names of kernels that multiply tensors


# ------------------------------------------------------------------------------------------------ frozen params
def freeze_matcher(patterns: Sequence[str]):
    """A predicate on parameter names: a glob (`transformer.h.0.*`, fnmatch on the whole name) or, prefixed
    `re:`, a regular expression found anywhere in the name. Raises re.error on a bad expression."""
    compiled = []
    for pattern in patterns:
        if pattern.startswith("re:"):
            expr = re.compile(pattern[3:])
            compiled.append(lambda name, expr=expr: expr.search(name) is not None)
        else:
            compiled.append(lambda name, pattern=pattern: fnmatch.fnmatchcase(name, pattern))
    return lambda name: any(match(name) for match in compiled)


def freeze(module: nn.Module, patterns: Sequence[str]) -> list[str]:
    """requires_grad False on every parameter whose name matches; the matched names (ValueError: a pattern that
    matches nothing, with example names)."""
    names = [n for n, _ in module.named_parameters()]
    for pattern in patterns:
        if not any(freeze_matcher([pattern])(n) for n in names):
            shown = ", ".join(names[:3] + (["..."] if len(names) > 3 else []))
            raise ValueError(f"--frozen {pattern!r} matches no parameter name (names look like {shown})")
    match = freeze_matcher(patterns)
    frozen = []
    for name, param in module.named_parameters():
        if match(name):
            param.requires_grad_(False)
            frozen.append(name)
    return frozen


def find_blocks(module: nn.Module) -> list[str]:
    """The recomputation units: composite modules (with children of their own) held in an nn.ModuleList or
    nn.Sequential, outermost only (a transformer's layers, a ResNet's bottlenecks)."""
    blocks: list[str] = []
    for name, container in module.named_modules():
        if not isinstance(container, (nn.ModuleList, nn.Sequential)):
            continue
        if any(name == b or name.startswith(b + ".") for b in blocks):
            continue
        for child_name, child in container.named_children():
            if any(True for _ in child.children()):
                blocks.append(f"{name}.{child_name}" if name else child_name)
    return blocks


# ------------------------------------------------------------------------------------------------ the trace
@dataclass
class _ForwardOp:
    call: AtenCall
    layer: str
    block: str


class _TrainingRecorder(Recorder):
    """The Recorder of frontends/torch_dispatch.py, plus: forward ops remembered with their layer, their outputs'
    autograd nodes tagged, backward ops classified by the node running them."""

    def __init__(self, root: Call, model: nn.Module, blocks: set[str], inputs: tuple = ()):
        super().__init__(root, model, inputs)
        self.blocks = blocks
        self.forward_ops: list[_ForwardOp] = []
        self.pending: list[tuple[int, list]] = []  # forward ops whose outputs' nodes are not tagged yet
        self.backward = False
        self.scratch = Call("<backward>")
        # (forward op index or None, backward op, its products, the weight-gradient part, scatter-add elements);
        # numbers only: holding the backward tensors would keep every gradient alive on a real device
        self.backward_ops: list[tuple[Optional[int], str, int, int, int]] = []
        self.uncounted: dict[str, int] = {}  # backward ops that look like products but have no formula here

    def tag_pending(self) -> None:
        for index, outputs in self.pending:
            for out in outputs:
                node = out.grad_fn
                if node is not None and "reconcile_op" not in node.metadata:
                    node.metadata["reconcile_op"] = index
        self.pending.clear()

    def _block(self) -> str:
        for call in self.stack[1:]:
            if call.name in self.blocks:
                return call.name
        return ""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.tag_pending()  # the previous op has come back through autograd: its outputs have their nodes
        if not self.backward:
            out = super().__torch_dispatch__(func, types, args, kwargs)
            call = self.stack[-1].items[-1]
            layer = self.stack[-1].name if len(self.stack) > 1 else ROOT
            self.forward_ops.append(_ForwardOp(call, layer, self._block()))
            outputs = out if isinstance(out, (tuple, list)) else (out,)
            self.pending.append((len(self.forward_ops) - 1, [o for o in outputs if isinstance(o, torch.Tensor)]))
            return out
        node = torch._C._current_autograd_node()
        index = node.metadata.get("reconcile_op") if node is not None else None
        self.stack.append(self.scratch)
        try:
            out = super().__torch_dispatch__(func, types, args, kwargs)
        finally:
            self.stack.pop()
        call = self.scratch.items.pop()
        fwd = self.forward_ops[index] if index is not None else None
        scattered = _numel(args[0]) if call.op == "embedding_dense_backward" else 0
        products, weight_part = _backward_products(call, args, fwd)
        if products or scattered:
            self.backward_ops.append((index, call.op, products, weight_part, scattered))
        elif any(hint in call.op for hint in _PRODUCT_HINTS):  # a product kernel with no formula here: say so
            self.uncounted[call.op] = self.uncounted.get(call.op, 0) + 1
        return out


def _layer_kind(module: Optional[nn.Module], attention: bool) -> str:
    if attention:
        return "attention"
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                           nn.ConvTranspose3d)):
        return "conv"
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        return "embedding"
    if isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D":  # transformers' Conv1D is x @ W + b
        return "linear"
    return "matmul"


def _float_outputs(value: Any) -> list[torch.Tensor]:
    """Every floating-point tensor a model returned (a ModelOutput, a tuple, a tensor), caches left out."""
    if isinstance(value, torch.Tensor):
        return [value] if value.is_floating_point() and value.requires_grad else []
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in _float_outputs(item)]
    return []


def loss_of(out: Any) -> torch.Tensor:
    """The training loss of this module (LOSS): the sum of every floating-point tensor the model returned."""
    outputs = _float_outputs(out)
    if not outputs:
        raise ValueError("the model returned no floating-point tensor that needs a gradient: nothing to train")
    loss = outputs[0].sum()
    for extra in outputs[1:]:
        loss = loss + extra.sum()
    return loss


def trace_training(module: nn.Module, example: torch.Tensor, name: str = "model",
                   frozen: Sequence[str] = (), recompute: str = NONE, token_model: bool = False) -> TrainingTrace:
    """Forward + backward of `module` on `example` (data: needs no gradient), traced as described above."""
    if recompute not in RECOMPUTE_MODES:
        raise ValueError(f"recompute must be one of {', '.join(RECOMPUTE_MODES)}, not {recompute!r}")
    notes: list[str] = []
    frozen_names = set(freeze(module, frozen))
    already = [n for n, p in module.named_parameters() if not p.requires_grad and n not in frozen_names]
    if already:
        notes.append(f"{len(already)} parameter tensors were built with requires_grad False (frozen as well)")
    module.train()
    blocks = find_blocks(module)
    params = {id(p): p for p in module.parameters()}
    root = Call(ROOT)
    recorder = _TrainingRecorder(root, module, set(blocks), (example,))
    with torch.enable_grad(), recorder, ModuleCalls(module, recorder):
        try:
            out = module(example)
        except Exception as exc:  # a BatchNorm on one value per channel, ...: products do not depend on the mode
            module.eval()
            notes.append(f"the forward fails in train mode ({type(exc).__name__}); traced in eval mode")
            recorder.forward_ops.clear()
            recorder.pending.clear()
            root.items.clear()
            out = module(example)
        recorder.tag_pending()
        loss = loss_of(out)
        recorder.tag_pending()
        recorder.backward = True
        loss.backward()
    modules = dict(module.named_modules())
    layers: dict[tuple[str, bool], TrainingLayer] = {}
    weighted_layers = {op.layer for op in recorder.forward_ops if op.call.products and op.call.weighted}

    def layer_of(op: _ForwardOp, attention: bool) -> TrainingLayer:
        key = (op.layer, attention)
        if key not in layers:
            # a module doing both (nn.MultiheadAttention's functional forward): two rows
            name = f"{op.layer}.attention" if attention and op.layer in weighted_layers else op.layer
            layers[key] = TrainingLayer(name, _layer_kind(modules.get(op.layer), attention), op.block)
        return layers[key]

    read_params: dict[tuple[str, bool], set[int]] = {}
    for op in recorder.forward_ops:
        call = op.call
        if call.op == "embedding":
            layer = layer_of(op, False)
            layer.kind = "embedding"
            read_params.setdefault((op.layer, False), set()).update(call.params)
        if not call.products:
            continue
        fused = call.extra.get("fused") if call.extra else None
        if fused:  # the fused nn.MultiheadAttention kernel (inference only): both parts, forward
            layer_of(op, False).fwd_macc += fused["weighted"]
            layer_of(op, True).fwd_attn += fused["activation"]
            continue
        attention = not call.weighted
        layer = layer_of(op, attention)
        if attention:
            layer.fwd_attn += call.products
        else:
            layer.fwd_macc += call.products
            read_params.setdefault((op.layer, False), set()).update(call.params)
    unattributed: dict[str, int] = {}
    for index, op, products, weight_part, scattered in recorder.backward_ops:
        fwd = recorder.forward_ops[index] if index is not None else None
        if scattered:
            if fwd is not None:
                layer_of(fwd, False).embed_wgrad += scattered
            continue
        if fwd is None or not fwd.call.products:
            unattributed[op] = unattributed.get(op, 0) + products
            continue
        if not fwd.call.weighted:
            layer_of(fwd, True).dgrad_attn += products
            continue
        layer = layer_of(fwd, False)
        layer.wgrad_macc += weight_part
        layer.dgrad_macc += products - weight_part
    if recorder.uncounted:
        notes.append("backward kernels with products this trace has no formula for (counted 0): "
                     + ", ".join(f"aten.{op} x{n}" for op, n in sorted(recorder.uncounted.items())))
    if unattributed:
        notes.append("backward products no forward product op explains: "
                     + ", ".join(f"aten.{op} {n:,}" for op, n in sorted(unattributed.items())))
    for (layer_name, attention), layer in layers.items():
        ids = read_params.get((layer_name, False), set())
        layer.params = sum(params[i].numel() for i in ids if i in params)
        layer.trainable = all(params[i].requires_grad for i in ids if i in params) if ids else True
        if recompute == FULL and layer.block:
            layer.recompute_macc, layer.recompute_attn = layer.fwd_macc, layer.fwd_attn
        elif recompute == SELECTIVE and (layer.block or not blocks):
            layer.recompute_attn = layer.fwd_attn
    if recompute == FULL and not blocks:
        notes.append("no blocks (composite modules in an nn.ModuleList or nn.Sequential): full recomputation "
                     "repeats nothing")
    trainable = sum(p.numel() for p in params.values() if p.requires_grad)
    frozen_count = sum(p.numel() for p in params.values() if not p.requires_grad)
    device = str(example.device.type)
    ordered = sorted(layers.values(), key=lambda layer: _first_seen(recorder.forward_ops, layer))
    return TrainingTrace(name, tuple(int(d) for d in example.shape), device, LOSS, recompute, tuple(frozen),
                         frozen_count, trainable, ordered, tuple(blocks), unattributed, tuple(notes), token_model)


def _first_seen(ops: list[_ForwardOp], layer: TrainingLayer) -> int:
    for i, op in enumerate(ops):
        if op.layer == layer.name:
            return i
    return len(ops)


def _numel(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        n = 1
        for d in value.shape:
            n *= int(d)
        return n
    return 0


def _backward_products(call: AtenCall, args: tuple, fwd: Optional[_ForwardOp]) -> tuple[int, int]:
    """(products of one backward op, the part that is a weight gradient)."""
    if call.op in _PRODUCT_OPS:
        weight_part = 0 if call.weighted else call.products  # reads the weight: input gradient
        if fwd is not None and not fwd.call.weighted:
            weight_part = 0
        return call.products, weight_part
    if call.op == "convolution_backward":
        # (grad_output, input, weight, bias_sizes, stride, padding, dilation, transposed, output_padding, groups,
        #  output_mask): the input gradient and the weight gradient each multiply as much as the forward did
        mask = args[10] if len(args) > 10 else (True, True, True)
        forward = fwd.call.products if fwd is not None else 0
        return forward * (int(bool(mask[0])) + int(bool(mask[1]))), forward * int(bool(mask[1]))
    if call.op in _SDPA_BACKWARD:
        forward = fwd.call.products if fwd is not None else 0
        return 2 * forward, 0  # dQ, dK from the scores' gradient; dV, dP from the output's gradient
    return 0, 0
