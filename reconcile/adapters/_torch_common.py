"""Helpers shared by the torch counters of issue 9 (fvcore, ptflops, torchinfo, FlopCounterMode, ultralytics-thop,
calflops, DeepSpeed). Not an adapter itself: `adapters.TOOLS` never names it.

What they share:
- attribution: a number a tool computed while some module ran belongs to the innermost module that is a layer of
  the IR (torch qualified names); a functional call outside every IR module layer (the document's `F.relu`)
  belongs to the IR's functional layer of the same op, matched in call order;
- observation: which aten ops ran inside which layer (a logging TorchDispatchMode plus global module hooks, as
  torch/utils/module_tracker.py does), so a tool that counts 0 for a layer can be told *why* (fused kernel, op
  missing from its table) instead of leaving a silent zero;
- the "right by coincidence" check: a total that lands on the document's total while its layers do not.
"""
from __future__ import annotations

import contextlib
from collections import Counter
from typing import Callable, Iterable, Iterator, Optional

from conventions import aten_ops
from conventions.formulas import layer_counts
from conventions.ir import Model



def ir_of(spec) -> Model:
    from ..models import layer_ir

    return layer_ir(spec, "torch")


def qualified_names(model) -> dict[int, str]:
    """id(module) -> torch qualified name ("" for the root)."""
    return {id(m): n for n, m in model.named_modules()}


def op_name(name: str) -> str:
    """A comparable op name: "aten::add_" / "aten.add.Tensor" / "__add__" / "iadd" -> "add"."""
    text = str(name)
    for prefix in ("aten::", "aten."):
        if text.startswith(prefix):
            text = text[len(prefix):]
    text = text.split(".")[0].strip("_")
    if text.startswith("i") and text[1:] in ("add", "sub", "mul"):
        text = text[1:]
    return text


class ModuleStack:
    """The qualified names of the modules running right now, innermost last (global forward hooks, as
    torch/utils/module_tracker.py ModuleTracker registers them). Global hooks fire before a module's own hooks."""

    def __init__(self, model):
        self.names = qualified_names(model)
        self.stack: list[str] = []
        self._handles: list = []

    def __enter__(self) -> "ModuleStack":
        from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

        def push(module, args):
            self.stack.append(self.names.get(id(module), f"<{type(module).__name__}>"))

        def pop(module, args, out):
            if self.stack:
                self.stack.pop()

        self._handles = [register_module_forward_pre_hook(push), register_module_forward_hook(pop)]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def innermost(self, layers: Iterable[str]) -> Optional[str]:
        """The innermost running module that is one of `layers`, or None (top-level functional code)."""
        wanted = set(layers)
        for name in reversed(self.stack):
            if name in wanted:
                return name
        return None


class FunctionalMatcher:
    """Hands out the IR's functional layers (F.relu, x + y, torch.matmul outside modules) by op, in call order."""

    def __init__(self, ir: Model):
        self.queues: dict[str, list[str]] = {}
        for layer in ir.layers:
            if layer.attr("functional"):
                self.queues.setdefault(op_name(layer.op), []).append(layer.name)

    def take(self, op: str) -> Optional[str]:
        queue = self.queues.get(op_name(op), [])
        return queue.pop(0) if queue else None


def group_calls(calls: list[tuple[Optional[str], str, float]], ir: Model) -> tuple[dict[str, list], list]:
    """(innermost IR module layer or None, op, value) per functional call -> {layer: [(op, value), ...]} and the
    calls that match no layer. A call outside every module layer goes to the IR's functional layer of that op."""
    matcher = FunctionalMatcher(ir)
    grouped: dict[str, list] = {}
    unmatched = []
    for layer, op, value in calls:
        target = layer or matcher.take(op)
        if target is None:
            unmatched.append((op, value))
        else:
            grouped.setdefault(target, []).append((op, value))
    return grouped, unmatched


@contextlib.contextmanager
def patched(owner, attr: str, make: Callable) -> Iterator[None]:
    """Replace owner.attr by make(original) for the duration: an observer around a tool function, never a change
    to what it computes. Restored even if the tool raises."""
    original = getattr(owner, attr)
    setattr(owner, attr, make(original))
    try:
        yield
    finally:
        setattr(owner, attr, original)


def aten_ops_by_layer(model, inputs: tuple, layer_names: Iterable[str], grad: bool) -> dict[Optional[str], Counter]:
    """aten ops (overload packet names, e.g. "aten._native_multi_head_attention") dispatched inside each IR layer
    in one forward under the given grad mode; key None = outside every IR module layer."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    names = list(layer_names)
    seen: dict[Optional[str], Counter] = {}

    class OpLog(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.setdefault(stack.innermost(names), Counter())[str(func._overloadpacket)] += 1
            return func(*args, **(kwargs or {}))

    with ModuleStack(model) as stack, torch.set_grad_enabled(grad), OpLog():
        model(*inputs)
    return seen


def compute_ops(ops: Counter) -> list[str]:
    """The ops among `ops` (overload packets as `str()` prints them: "aten.addmm", "transformers.grouped_mm_fallback")
    that do dot products by the op table (conventions/aten_ops.py), so a 0 for their layer cannot be right."""
    def table_name(op: str) -> str:
        namespace, _, name = str(op).partition(".")
        return name if namespace == "aten" else f"{namespace}::{name}"
    return sorted(op for op in ops if aten_ops.is_product(table_name(op)))


def _n(x) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,}"


def coincidence_note(total, per_layer: dict[str, float], ir: Model, basis: str, label: str) -> str:
    """Say so when `total` lands on (or within 0.01% of) the document's total `basis` ("flops" or "macc") only
    because per-layer differences of opposite sign cancel; "" otherwise (same convention, or simply different)."""
    doc = {layer.name: getattr(layer_counts(layer), basis) or 0 for layer in ir.layers}
    doc_total = sum(doc.values())
    if not doc_total or not total or abs(total - doc_total) > 1e-4 * doc_total:
        return ""
    diffs = {name: per_layer.get(name, 0) - doc.get(name, 0) for name in dict.fromkeys([*doc, *per_layer])}
    plus = {n: d for n, d in diffs.items() if d > 0}
    minus = {n: d for n, d in diffs.items() if d < 0}
    if not plus or not minus:
        return ""
    kinds = {layer.name: layer.kind for layer in ir.layers}

    def listing(part: dict) -> str:
        return ", ".join(f"{n} ({kinds.get(n, '?')}) {d:+,.0f}" for n, d in part.items())

    gap = total - doc_total
    where = "equals" if gap == 0 else f"is {_n(abs(gap))} {'above' if gap > 0 else 'below'}"
    return (f"right only by coincidence: {label} {_n(total)} {where} the document's total {basis} {_n(doc_total)} "
            f"because offsetting conventions cancel: it counts {_n(sum(plus.values()))} the document does not "
            f"[{listing(plus)}] and leaves out {_n(-sum(minus.values()))} the document counts [{listing(minus)}]")


def module_layers(ir: Model) -> list[str]:
    """IR layers that are module calls (not functional), by qualified name."""
    return [layer.name for layer in ir.layers if not layer.attr("functional")]


# aten ops that only move or view data: never worth an "unsupported" row.
_BOOKKEEPING = {"view", "_unsafe_view", "reshape", "t", "transpose", "permute", "expand", "clone", "detach", "alias",
                "contiguous", "unsqueeze", "squeeze", "select", "slice", "split", "split_with_sizes", "chunk",
                "unbind", "as_strided", "empty", "empty_like", "zeros", "zeros_like", "new_empty", "new_zeros",
                "copy_", "flatten", "unflatten", "lift_fresh", "_to_copy", "fill_", "expand_as", "view_as",
                "dropout", "native_dropout", "is_same_size", "_reshape_alias"}


def uncounted(ops: Counter, known: set[str]) -> Counter:
    """The arithmetic ops among `ops` that are not in the tool's table `known` (aten packet names)."""
    bookkeeping = {op_name(op) for op in _BOOKKEEPING}
    return Counter({op: n for op, n in ops.items() if op not in known and op_name(op) not in bookkeeping})


def op_list(ops: Counter) -> str:
    return ", ".join(f"{op}" + (f" x{n}" if n > 1 else "") for op, n in sorted(ops.items()))


def dispatch_gaps(ops_by_layer: dict, counted: set[str], known: set[str], ir: Model) -> tuple[dict, dict]:
    """For a TorchDispatchMode counter with op table `known` that produced counts for the layers in `counted`:
    ({layer: uncounted ops} for layers it has no count for, {layer: uncounted ops} for layers it counted only in
    part). Ops run outside every module layer go to the IR's functional layers by op name."""
    missing: dict[str, Counter] = {}
    partial: dict[str, Counter] = {}
    matcher = FunctionalMatcher(ir)
    for layer, ops in ops_by_layer.items():
        gaps = uncounted(ops, known)
        if layer is None:
            for op, n in gaps.items():
                for _ in range(n):
                    target = matcher.take(op)
                    # a fused op no IR layer stands for (nn.TransformerEncoderLayer's fast path): keyed by None
                    missing.setdefault(target, Counter())[op] += 1
            continue
        if not gaps:
            continue
        (partial if layer in counted else missing)[layer] = gaps
    return missing, partial
