"""The reference document's own formulas as a 'tool', so its numbers sit in the same table as the counters'.

Reads the torch IR (or the Caffe IR for prototxt-only models). Pools are counted as input elements, the literal
reading of the document's FLOPs_pool1 = 20*24*24 (see conventions.formulas). Layers with no document formula
get an `unsupported` row saying so, never a 0.
"""
from __future__ import annotations

from conventions.formulas import layer_counts

from ..records import COMPUTE, PARAMS, TOTAL, UNSUPPORTED, Emitter, Record

TOOL = "document"
FRAMEWORK = "ir"
WORKER = "torch"
RULES_VERSION = "seed-000"  # the reference document's formulas (docs/document.md); a label, kept for the goldens


def version() -> str:
    return RULES_VERSION


def unavailable() -> None:
    return None


def count(spec, emit: Emitter) -> list[Record]:
    from ..models import layer_ir

    model = layer_ir(spec, "torch" if spec.torch_factory else "caffe")
    records: list[Record] = []
    totals = {"params": 0, "macc": 0, "flops": 0}
    for layer in model.layers:
        counts = layer_counts(layer)
        records.append(emit.ok(layer.name, layer.kind, PARAMS, "params", counts.params))
        totals["params"] += counts.params
        for metric, value in (("macc", counts.macc), ("flops", counts.flops)):
            if value is None:
                if metric == "flops":
                    records.append(emit.status(UNSUPPORTED, counts.note, layer.name, layer.kind, COMPUTE, metric))
                continue
            records.append(emit.ok(layer.name, layer.kind, COMPUTE, metric, value, counts.note))
            totals[metric] += value
    records.append(emit.ok(TOTAL, "", PARAMS, "params", totals["params"]))
    records.append(emit.ok(TOTAL, "", COMPUTE, "macc", totals["macc"]))
    records.append(emit.ok(TOTAL, "", COMPUTE, "flops", totals["flops"]))
    return records
