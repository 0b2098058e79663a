"""torchinfo (1.8.0): per-layer Mult-Adds and Param # from `summary()`'s ModelStatistics.

How it counts (torchinfo/torchinfo.py `summary` -> `forward_pass`, under torch.no_grad() in eval mode):
- a forward pre-hook creates one `LayerInfo` per module call (torchinfo/layer_info.py); the forward hook records
  the output size and calls `LayerInfo.calculate_macs`, which multiplies *parameters* by output size:
    a class whose name contains "Conv": (weight + bias numel) * N * prod(output spatial)  = MACC + bias adds;
    any other module's "weight"/"bias": output_size[0] * numel, i.e. batch x parameters. For a Linear on
    (N, n_in) that is MACC + bias adds; on a 3-D input (N, L, n_in) it is N x parameters: per batch element,
    not per token (L times too small); a BatchNorm/LayerNorm gets N x its affine parameters;
    other parameter names containing "weight"/"bias" (MultiheadAttention's in_proj_weight):
    prod(output_size[:2]) * numel;
- `ModelStatistics.__init__` (torchinfo/model_statistics.py) sums `macs` over *leaf* layers only
  (`is_leaf_layer = not any(module.children())`). nn.MultiheadAttention has a child (`out_proj`, never called as
  a module), so it is not a leaf: its Mult-Adds print "--" and are left out of the total;
- Param #: a leaf prints its `num_params`, a non-leaf its `leftover_params()` (parameters not in executed
  children); `total_params` sums those.
"""
from __future__ import annotations

from typing import Optional

from . import layer_kinds
from ._torch_common import coincidence_note, ir_of, qualified_names
from ..records import COMPUTE, PARAMS, TOTAL, UNSUPPORTED, Emitter, Record

TOOL = "torchinfo"
FRAMEWORK = "torch"
WORKER = "torch"
DISTRIBUTION = "torchinfo"
METRIC = "Mult-Adds"  # column header; the total line is "Total mult-adds"
PARAM_METRIC = "Param #"


def version() -> str:
    from . import distribution_version

    return distribution_version(DISTRIBUTION)


def unavailable() -> Optional[str]:
    from . import missing

    return missing(DISTRIBUTION, "torchinfo")


def run_summary(model, spec):
    from torchinfo import summary

    from ..models import example_input

    given = example_input(spec, model, TOOL)
    # verbose=0: no printing; device="cpu" (get_device would look for CUDA); cache_forward_pass stays False.
    if spec.token_model:  # token ids as input_data (input_size would build floats)
        return summary(model, input_data=[given], verbose=0, device="cpu")
    return summary(model, input_size=tuple(spec.input_shape), verbose=0, device="cpu")


def layer_rows(stats, model) -> list[tuple[str, object]]:
    """(qualified name, LayerInfo) per summary row below the root; a module called again gets "name#k", as the IR
    names repeated calls."""
    names = qualified_names(model)
    seen: dict[str, int] = {}
    rows = []
    for info in stats.summary_list:
        if info.depth == 0:
            continue
        name = names.get(id(info.module), info.var_name)
        seen[name] = seen.get(name, 0) + 1
        rows.append((name if seen[name] == 1 else f"{name}#{seen[name]}", info))
    return rows


def per_token_note(info, kind: str) -> str:
    """torchinfo/layer_info.py calculate_macs charges a non-Conv module output_size[0] * params: on a 3-D input
    that is per batch element, not per token."""
    out = info.output_size
    if kind == "linear" and len(out) > 2:
        tokens = 1
        for d in out[1:-1]:
            tokens *= d
        return (f"PER BATCH ELEMENT, NOT PER TOKEN: layer_info.py calculate_macs = output_size[0] x parameters = "
                f"{out[0]} x {info.num_params:,}; the {tokens} tokens of output {out} make the true MACs "
                f"{tokens} times larger")
    return ""


def count(spec, emit: Emitter) -> list[Record]:
    from ..models import torch_module

    kinds = layer_kinds(spec)
    ir = ir_of(spec)
    model = torch_module(spec)
    stats = run_summary(model, spec)
    records: list[Record] = []
    per_layer: dict[str, int] = {}
    left_out = []
    for name, info in layer_rows(stats, model):
        if name not in kinds and not info.is_leaf_layer:
            continue  # a user container: its leaves carry the numbers
        kind = kinds.get(name, info.class_name)
        params = info.num_params if info.is_leaf_layer else info.leftover_params()
        records.append(emit.ok(name, kind, PARAMS, PARAM_METRIC, params,
                               "" if info.is_leaf_layer else "leftover_params(): parameters not in executed children"))
        if info.is_leaf_layer:
            per_layer[name] = info.macs
            records.append(emit.ok(name, kind, COMPUTE, METRIC, info.macs, per_token_note(info, kind)))
        else:
            children = ", ".join(n for n, _ in info.module.named_children())
            msg = (f"left out of torchinfo {emit.tool_version}'s Mult-Adds: {info.class_name} has children "
                   f"({children}), so it is not a leaf layer and model_statistics.py ModelStatistics sums only "
                   f"leaves; it prints '--' (layer_info.py macs_to_str), though calculate_macs computed "
                   f"{info.macs:,} for it (prod(output_size[:2]) x its in_proj parameters)")
            records.append(emit.status(UNSUPPORTED, msg, name, kind, COMPUTE, METRIC))
            left_out.append(f"{name} ({info.class_name})")
    notes = []
    if left_out:
        notes.append("LEAVES OUT non-leaf layers: " + ", ".join(left_out))
    per_token = [n for n, i in layer_rows(stats, model) if per_token_note(i, kinds.get(n, ""))]
    if per_token:
        notes.append("counts per batch element, not per token: " + ", ".join(per_token))
    notes.append(coincidence_note(stats.total_mult_adds, per_layer, ir, "macc", f"torchinfo {METRIC}"))
    records.append(emit.ok(TOTAL, "", COMPUTE, METRIC, stats.total_mult_adds, "; ".join(filter(None, notes))))
    records.append(emit.ok(TOTAL, "", PARAMS, "Total params", stats.total_params))
    return records
