"""fvcore (0.1.5.post20221221): per-module flops from a TorchScript trace, plus parameter counts.

How fvcore counts (fvcore/nn/flop_count.py `FlopCountAnalysis`, fvcore/nn/jit_analysis.py `JitModelAnalysis`):
- it traces the model with `torch.jit._get_trace_graph` (grad mode as the caller has it) and charges each traced
  aten op to every module whose scope it ran in (`_analyze`, ancestor mode "owner"): `by_module()` is inclusive;
- an op with a handle in `_DEFAULT_SUPPORTED_OPS` is counted by fvcore/nn/jit_handles.py, where "one fused
  multiply-add" is one flop (conv and linear without bias adds, BN x2 per element, LayerNorm x5, adaptive avg pool
  x1 per input element);
- an op in `_IGNORED_OPS` (aten::relu, aten::flatten, ...) is skipped silently by design;
- any other op is skipped and counted 0, and `_warn_unsupported_ops` logs "Unsupported operator aten::max_pool2d
  encountered 1 time(s)". Those skips are recorded here as `unsupported` rows (or, when a layer still has counted
  ops, named in its message), never as a plain 0;
- modules that never ran in the trace (nn.MultiheadAttention's `out_proj`, used through F.linear) are "uncalled".
Parameters: fvcore/nn/parameter_count.py `parameter_count` (per module prefix, inclusive; "" = whole model).
"""
from __future__ import annotations

import logging
from collections import Counter
from typing import Optional

from . import layer_kinds
from ._torch_common import FunctionalMatcher, coincidence_note, ir_of, module_layers
from ..records import COMPUTE, PARAMS, TOTAL, UNSUPPORTED, Emitter, Record

TOOL = "fvcore"
FRAMEWORK = "torch"
WORKER = "torch"
DISTRIBUTION = "fvcore"
METRIC = "flops"  # FlopCountAnalysis's own word, although it counts one multiply-add as one flop


def version() -> str:
    from . import distribution_version

    return distribution_version(DISTRIBUTION)


def unavailable() -> Optional[str]:
    from . import missing

    return missing(DISTRIBUTION, "fvcore")


class _Captured(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def analyse(model, inputs: tuple):
    """Run FlopCountAnalysis once, capturing the warnings it logs (jit_analysis.py `_warn_unsupported_ops`,
    `_warn_uncalled_mods`) instead of letting them reach stderr."""
    from fvcore.nn import FlopCountAnalysis

    handler = _Captured()
    log = logging.getLogger("fvcore.nn.jit_analysis")
    log.addHandler(handler)
    propagate, log.propagate = log.propagate, False
    try:
        analysis = FlopCountAnalysis(model, inputs)
        analysis.total()  # forces the trace
    finally:
        log.removeHandler(handler)
        log.propagate = propagate
    return analysis, handler.lines


def own_unsupported(analysis, model) -> Counter:
    """Unsupported ops the root itself ran, outside every child (fvcore charges each op to all its ancestors)."""
    own = Counter(analysis.unsupported_ops(""))
    for name, _ in model.named_children():
        own.subtract(analysis.unsupported_ops(name))
    return +own


def skipped_text(ops: Counter) -> str:
    return ", ".join(f"{op} x{n}" for op, n in sorted(ops.items()))


def layer_records(emit: Emitter, name: str, kind: str, flops, params, skipped: Counter, uncalled: bool) -> list:
    ver = emit.tool_version
    rows = [emit.ok(name, kind, PARAMS, "params", params)]
    if uncalled:
        msg = f"fvcore {ver} never saw {name} run in the trace (jit_analysis.py `uncalled_modules`): counted 0"
        rows.append(emit.status(UNSUPPORTED, msg, name, kind, COMPUTE, METRIC))
    elif skipped and not flops:
        msg = (f"fvcore {ver} has no handle for {skipped_text(skipped)} (not in flop_count.py "
               f"_DEFAULT_SUPPORTED_OPS): it warned 'Unsupported operator' and counted 0")
        rows.append(emit.status(UNSUPPORTED, msg, name, kind, COMPUTE, METRIC))
    elif skipped:
        msg = (f"counts only the ops fvcore has handles for; skipped (warned, counted 0): {skipped_text(skipped)}"
               + ("; the attention matmuls QK^T and AV run inside aten::scaled_dot_product_attention"
                  if any("scaled_dot_product" in op for op in skipped) else ""))
        rows.append(emit.ok(name, kind, COMPUTE, METRIC, flops, msg))
    else:
        note = "" if flops else "every op traced here is in jit_analysis.py _IGNORED_OPS (e.g. aten::relu): 0 by design"
        rows.append(emit.ok(name, kind, COMPUTE, METRIC, flops, note))
    return rows


def functional_rows(emit: Emitter, own: Counter, ir, kinds: dict[str, str]) -> tuple[list, Counter]:
    """Root-level unsupported ops (the residual `x + y` of a block) as unsupported rows on the IR's functional
    layers of the same op; what matches no IR layer is returned for the total's message."""
    matcher = FunctionalMatcher(ir)
    rows, left = [], Counter()
    for op, n in sorted(own.items()):
        for _ in range(n):
            layer = matcher.take(op)
            if layer is None:
                left[op] += 1
                continue
            msg = (f"fvcore {emit.tool_version} has no handle for {op} (not in flop_count.py "
                   f"_DEFAULT_SUPPORTED_OPS): it warned 'Unsupported operator' and counted 0")
            rows.append(emit.status(UNSUPPORTED, msg, layer, kinds.get(layer, ""), COMPUTE, METRIC))
    return rows, left


def count(spec, emit: Emitter) -> list[Record]:
    from fvcore.nn import parameter_count

    from ..models import example_input, torch_module

    kinds = layer_kinds(spec)
    ir = ir_of(spec)
    model = torch_module(spec)
    analysis, _warnings = analyse(model, (example_input(spec, model, TOOL),))  # quoted via unsupported_ops()
    by_module = analysis.by_module()
    params = parameter_count(model)
    uncalled = analysis.uncalled_modules()
    records: list[Record] = []
    counted = {}
    for name in module_layers(ir):
        if name not in by_module:
            continue
        skipped = Counter(analysis.unsupported_ops(name))
        records += layer_records(emit, name, kinds[name], by_module[name], params.get(name, 0), skipped,
                                 name in uncalled)
        counted[name] = by_module[name]
    rows, left = functional_rows(emit, own_unsupported(analysis, model), ir, kinds)
    records += rows
    all_skipped = Counter(analysis.unsupported_ops(""))
    notes = []
    if all_skipped:
        notes.append(f"skipped ops fvcore has no handle for, counted 0 with a logged warning: "
                     f"{skipped_text(all_skipped)}")
    if left:
        notes.append(f"of which outside every layer: {skipped_text(left)}")
    attributed = sum(counted.values())
    if by_module[""] != attributed:
        notes.append(f"{by_module[''] - attributed:,} counted outside the IR's module layers")
    notes.append(coincidence_note(by_module[""], counted, ir, "macc", f"fvcore {METRIC}"))
    note = "; ".join(n for n in notes if n)
    records.append(emit.ok(TOTAL, "", COMPUTE, METRIC, analysis.total(), note))
    records.append(emit.ok(TOTAL, "", PARAMS, "params", params[""]))
    return records
