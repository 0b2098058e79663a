"""ptflops (0.7.5), aten backend: a TorchDispatchMode counting a handful of aten ops, per top-level child.

How it counts (ptflops/aten_engine.py `get_flops_aten`, `FlopCounterMode`):
- the forward runs with grad enabled (no torch.no_grad) in eval mode; every dispatched aten op whose overload
  packet is a key of ptflops/aten_ops.py `ATEN_OPS_MAPPING` (aten.mm, matmul, addmm, bmm, convolution,
  _convolution) is counted and charged to 'Global' and to the top-level children running (forward pre/post hooks
  on `module.named_children()` only, left registered after it returns);
- every other op is "treated as a zero-op", printed only with verbose=True: pools, activations, norms, additions
  and the fused scaled-dot-product kernel nn.MultiheadAttention uses for QK^T and AV count 0 silently.
Per-layer rows are its per-child counts (read from `flop_counts` when the mode exits). A layer it has no count
for, but in which arithmetic aten ops ran (seen by a second, logging forward under the same grad mode), gets an
`unsupported` row naming those ops; a counted layer whose compute ops were partly uncounted says so.
"""
from __future__ import annotations

import io
from typing import Optional

from . import layer_kinds
from ._torch_common import (aten_ops_by_layer, coincidence_note, compute_ops, dispatch_gaps, ir_of, module_layers,
                            op_list, patched)
from ..records import COMPUTE, PARAMS, TOTAL, UNSUPPORTED, Emitter, Record

TOOL = "ptflops_aten"
FRAMEWORK = "torch"
WORKER = "torch"
DISTRIBUTION = "ptflops"
BACKEND = "aten"
METRIC = "MACs"


def version() -> str:
    from . import distribution_version

    return distribution_version(DISTRIBUTION)


def unavailable() -> Optional[str]:
    from . import missing

    return missing(DISTRIBUTION, "ptflops")


def observe_counts(snapshot: dict):
    """Wrap ptflops/aten_engine.py `FlopCounterMode.__exit__` to copy `flop_counts` ({module: {op: macs}})."""
    def make(original):
        def observed(self, *args):
            snapshot.update({name: {str(op): v for op, v in ops.items()} for name, ops in self.flop_counts.items()})
            return original(self, *args)
        return observed
    return make


def run_ptflops(model, spec) -> tuple[int, int, dict]:
    from ptflops import aten_engine, get_model_complexity_info

    from ..models import example_input

    snapshot: dict = {}
    with patched(aten_engine.FlopCounterMode, "__exit__", observe_counts(snapshot)):
        macs, params = get_model_complexity_info(
            model, tuple(spec.input_shape[1:]), as_strings=False, print_per_layer_stat=False, ost=io.StringIO(),
            backend=BACKEND, input_constructor=lambda _res: example_input(spec, model, TOOL))
    if macs is None:
        raise RuntimeError("ptflops returned None: get_flops_aten caught an exception during the forward")
    return macs, params, snapshot


def known_ops() -> set[str]:
    from ptflops.aten_ops import ATEN_OPS_MAPPING

    return {str(op) for op in ATEN_OPS_MAPPING}


def gap_message(ver: str, ops) -> str:
    return (f"ptflops {ver} aten backend: aten_ops.py ATEN_OPS_MAPPING has no entry for {op_list(ops)}, so "
            f"FlopCounterMode treated it as a zero-op (printed only with verbose=True): counted 0")


def count(spec, emit: Emitter) -> list[Record]:
    from ..models import example_input, torch_module

    kinds = layer_kinds(spec)
    ir = ir_of(spec)
    macs, params, counts = run_ptflops(torch_module(spec), spec)
    layers = [n for n in module_layers(ir)]
    per_layer = {n: sum(counts[n].values()) for n in layers if n in counts}
    probe = torch_module(spec)
    ops = aten_ops_by_layer(probe, (example_input(spec, probe, TOOL),), layers, grad=True)
    missing, partial = dispatch_gaps(ops, set(per_layer), known_ops(), ir)
    records: list[Record] = []
    for layer in ir.layers:
        name, kind = layer.name, kinds.get(layer.name, layer.kind)
        if name in per_layer:
            detail = ", ".join(f"{op} {v:,}" for op, v in counts[name].items())
            gaps = compute_ops(partial.get(name, {}))
            note = (f"PARTIAL: {gap_message(emit.tool_version, {g: partial[name][g] for g in gaps})}; counted: "
                    f"{detail}" if gaps else detail)
            records.append(emit.ok(name, kind, COMPUTE, METRIC, per_layer[name], note))
        elif name in missing:
            records.append(emit.status(UNSUPPORTED, gap_message(emit.tool_version, missing[name]), name, kind,
                                       COMPUTE, METRIC))
    # Top-level children that are containers (ResNet's layer1..layer4): the aten backend reports them whole.
    inside = {name: [n for n in module_layers(ir) if n.startswith(name + ".")] for name in counts}
    for name, members in inside.items():
        if name not in per_layer and members:
            value = sum(counts[name].values())
            per_layer[name] = value
            records.append(emit.ok(name, "container", COMPUTE, METRIC, value,
                                   f"a container of {len(members)} IR layers: the aten backend tracks only "
                                   f"`model.named_children()`, so it reports their sum"))
    notes = []
    attributed = sum(per_layer.values())
    if attributed != macs:
        notes.append(f"{macs - attributed:,} counted outside the top-level children that are IR layers (the aten "
                     f"backend only tracks `model.named_children()`)")
    outside = compute_ops(missing.pop(None, {}))
    if missing:
        notes.append("silent zeros (ops with no ATEN_OPS_MAPPING entry): " + ", ".join(sorted(missing)))
    if outside:
        notes.append("silent zeros outside every IR layer: " + ", ".join(outside))
    if any(compute_ops(p) for p in partial.values()):
        notes.append("partly counted: " + ", ".join(n for n, p in partial.items() if compute_ops(p)))
    notes.append(coincidence_note(macs, per_layer, ir, "macc", f"ptflops aten {METRIC}"))
    records.append(emit.ok(TOTAL, "", COMPUTE, METRIC, macs, "; ".join(filter(None, notes))))
    records.append(emit.ok(TOTAL, "", PARAMS, "params", params,
                           "trainable parameters (pytorch_engine.py get_model_parameters_number)"))
    return records
