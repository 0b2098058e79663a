"""torch.utils.flop_counter.FlopCounterMode (torch 2.13.0): aten-level FLOPs, per module, twice.

How it counts (torch/utils/flop_counter.py):
- `FlopCounterMode` is a TorchDispatchMode; each dispatched op whose overload packet is in `flop_registry`
  (`register_flop_formula`: mm, addmm, bmm, baddbmm, convolution, the CUDA flash/efficient/cudnn
  scaled-dot-product kernels, ...) adds its formula's count to every module on torch/utils/module_tracker.py
  `ModuleTracker.parents`, named "<RootClass>.<qualified name>"; `get_flop_counts()` = {module: {op: flops}}.
  Everything else counts 0 with no warning.
- the formulas count 2 FLOPs per multiply-accumulate (`mm_flop`: m * n * 2 * k, "Should be 2 * k - 1
  technically"); `addmm_flop` ignores the bias add; `conv_flop_count` ignores the bias ("Computation for bias are
  ignored").
The same model is counted under `torch.no_grad()` (metric "FLOP [no_grad]") and with grad enabled ("FLOP [grad]"),
both in eval mode, because the op that runs depends on it: under no_grad an eval nn.MultiheadAttention takes its
fast path, the fused `aten._native_multi_head_attention`, which has no formula, so the whole layer counts 0;
with grad enabled it runs addmm projections plus `aten._scaled_dot_product_flash_attention_for_cpu` (QK^T, AV),
which has no formula on CPU either. Layers whose arithmetic ops have no formula (seen by a second, logging
forward under the same grad mode) get `unsupported` rows naming the ops, and the zero is flagged on the total.
"""
from __future__ import annotations

from collections import Counter
from typing import Optional

from . import layer_kinds
from ._torch_common import (aten_ops_by_layer, coincidence_note, compute_ops, dispatch_gaps, ir_of, module_layers,
                            op_list)
from ..records import COMPUTE, ERROR, TOTAL, UNSUPPORTED, Emitter, Record

TOOL = "torch_flop_counter"
FRAMEWORK = "torch"
WORKER = "torch"
METRICS = {False: "FLOP [no_grad]", True: "FLOP [grad]"}  # get_table's column header is "FLOP"


def version() -> str:
    from . import distribution_version

    return distribution_version("torch")


def unavailable() -> Optional[str]:
    try:
        from torch.utils.flop_counter import FlopCounterMode  # noqa: F401  (torch >= 2.1)
    except ImportError as exc:
        return f"torch.utils.flop_counter.FlopCounterMode is not importable: {exc}"
    return None


def flop_counts(spec, grad: bool) -> tuple[int, dict[str, dict[str, int]]]:
    """(total, {qualified module name: {op: flops}}) of one forward under the given grad mode."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from ..models import example_input, torch_module

    model = torch_module(spec)
    root = type(model).__name__
    given = example_input(spec, model, TOOL, dispatch_level=True)  # FlopCounterMode counts meta tensors too
    with torch.set_grad_enabled(grad), FlopCounterMode(display=False) as counter:
        model(given)
    per_module = {}
    for name, ops in counter.get_flop_counts().items():
        if name.startswith(root + "."):
            per_module[name[len(root) + 1:]] = {str(op): int(v) for op, v in ops.items()}
    return counter.get_total_flops(), per_module


def known_ops() -> set[str]:
    from torch.utils.flop_counter import flop_registry

    return {str(op) for op in flop_registry}


def gap_message(ver: str, ops, grad: bool) -> str:
    mode = "with grad enabled" if grad else "under torch.no_grad()"
    why = ""
    if any("native_multi_head_attention" in op for op in ops):
        why = " (the fused fast path an eval nn.MultiheadAttention takes when no grad is needed)"
    elif any("transformer_encoder_layer_fwd" in op for op in ops):
        why = " (the fused fast path an eval nn.TransformerEncoderLayer takes when no grad is needed)"
    return (f"FlopCounterMode (torch {ver}) {mode}: torch/utils/flop_counter.py flop_registry has no formula for "
            f"{op_list(ops)}{why}: counted 0 silently")


def mode_records(emit: Emitter, spec, ir, kinds: dict, grad: bool) -> list[Record]:
    from ..models import example_input, torch_module

    metric = METRICS[grad]
    total, per_module = flop_counts(spec, grad)
    layers = module_layers(ir)
    per_layer = {n: sum(per_module[n].values()) for n in layers if n in per_module}
    probe = torch_module(spec)
    ops = aten_ops_by_layer(probe, (example_input(spec, probe, TOOL, dispatch_level=True),), layers, grad=grad)
    missing, partial = dispatch_gaps(ops, set(per_layer), known_ops(), ir)
    records = []
    zeroed = []
    for layer in ir.layers:
        name, kind = layer.name, kinds.get(layer.name, layer.kind)
        if name in per_layer:
            gaps = {g: partial[name][g] for g in compute_ops(partial.get(name, {}))}
            detail = ", ".join(f"{op} {v:,}" for op, v in per_module[name].items())
            note = f"PARTIAL: {gap_message(emit.tool_version, gaps, grad)}; counted: {detail}" if gaps else detail
            records.append(emit.ok(name, kind, COMPUTE, metric, per_layer[name], note))
        elif name in missing:
            records.append(emit.status(UNSUPPORTED, gap_message(emit.tool_version, missing[name], grad), name, kind,
                                       COMPUTE, metric))
            if compute_ops(missing[name]):
                zeroed.append(f"{name} ({layer.op}: {', '.join(compute_ops(missing[name]))})")
    notes = []
    outside = compute_ops(missing.pop(None, Counter()))
    if outside:
        notes.append("SILENT ZERO for " + gap_message(emit.tool_version, Counter(outside), grad).split(": ", 1)[1])
    if zeroed:
        notes.append("SILENT ZERO for layers that do dot products: " + ", ".join(zeroed))
    partly = [n for n, p in partial.items() if compute_ops(p)]
    if partly:
        notes.append("partly counted (fused kernel without a formula): " + ", ".join(partly))
    if total != sum(per_layer.values()):
        notes.append(f"{total - sum(per_layer.values()):,} counted outside the IR's module layers")
    notes.append(coincidence_note(total, per_layer, ir, "flops", f"FlopCounterMode {metric}"))
    records.append(emit.ok(TOTAL, "", COMPUTE, metric, total, "; ".join(filter(None, notes))))
    return records


def count(spec, emit: Emitter) -> list[Record]:
    """Both grad modes, each on its own: a forward that crashes in one mode (a model that refuses no_grad, a kernel
    missing for one path) is an error row for that metric, and the other mode's numbers stay."""
    kinds = layer_kinds(spec)
    ir = ir_of(spec)
    records, failures = [], []
    for grad in (False, True):
        try:
            records += mode_records(emit, spec, ir, kinds, grad=grad)
        except Exception as exc:  # the tool's own crash in this mode; reported, not raised
            failures.append((grad, exc))
    if len(failures) == 2:  # nothing counted: the job's error, as for any crashing tool
        raise failures[0][1]
    for grad, exc in failures:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        mode = "with grad enabled" if grad else "under torch.no_grad()"
        records.append(emit.status(ERROR, f"FlopCounterMode forward {mode} failed: {type(exc).__name__}: {first}",
                                   TOTAL, "", COMPUTE, METRICS[grad]))
    return records
