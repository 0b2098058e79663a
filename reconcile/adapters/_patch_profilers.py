"""The DeepSpeed flops profiler and its fork calflops, read per layer. Not an adapter itself.

Both work alike (deepspeed/profiling/flops_profiler/profiler.py `FlopsProfiler.start_profile`; calflops/
calculate_pipline.py `CalFlopsPipline.start_flops_calculate`):
- they monkey-patch torch functionals and tensor methods (F.linear, F.conv2d, F.relu, F.max_pool2d, F.softmax,
  torch.matmul, Tensor.add, ... via `wrapFunc`): each call appends (name, flops) and (name, macs) to the list on top
  of the module-level stacks `module_flop_count` / `module_mac_count`;
- every module (except RNNs, counted by hooks) gets a pre-hook that pushes a fresh list and a post-hook that pops it
  into the module's own `__flops__` / `__macs__`; so a call is charged to the innermost running module;
- totals are `get_module_flops` / `get_module_macs`: sums over the module tree.
Per layer we read the same inclusive sums for each IR module layer. A module that is not an IR layer (the model
itself, a user container) keeps only the functional calls it made directly (the document's F.relu): those are
snapshotted from the top list just before its post-hook pops it (a global forward hook fires before a module's
own hooks) and handed to the IR's functional layer of the same op.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Callable

from ._torch_common import group_calls, module_layers, qualified_names


@dataclass
class Profile:
    layers: dict[str, tuple[int, int, int]]  # IR module layer -> (flops, macs, params), inclusive
    functional: dict[str, list]  # IR functional layer -> [(op, flops, macs), ...]
    unmatched: list  # [(op, flops, macs)] direct calls of non-layer modules matching no IR layer


def _function_names(old_functions: dict) -> Callable[[object], str]:
    """`wrapFunc` keys its entries by `func.__str__` and keeps the original in `old_functions[key]`."""
    def name(key) -> str:
        original = old_functions.get(key)
        return getattr(original, "__name__", str(key))
    return name


def pair_entries(flop_entries: list, mac_entries: list, fn_name) -> list[tuple[str, int, int]]:
    """(op, flops, macs) per call: `wrapFunc` always appends (key, flops) but appends (key, macs) only when macs is
    non-zero, so the mac entries are an in-order subsequence of the flop entries."""
    out, j = [], 0
    for key, flops in flop_entries:
        macs = 0
        if j < len(mac_entries) and mac_entries[j][0] == key:
            macs, j = mac_entries[j][1], j + 1
        out.append((fn_name(key), flops, macs))
    return out


def breakdown(model, inputs: tuple, ir, tool: ModuleType, start: Callable, stop: Callable) -> Profile:
    """Run one profiled forward of `model` and read per-layer counts.

    `tool` is the module holding `module_flop_count`, `module_mac_count`, `old_functions` and `get_module_flops`,
    `get_module_macs`; `start()` / `stop()` are the profiler's own start/end calls."""
    from torch.nn.modules.module import register_module_forward_hook

    names = qualified_names(model)
    layer_names = set(module_layers(ir))
    direct: list = []  # (op, flops, macs) made directly by non-layer modules
    fn_name = _function_names(tool.old_functions)

    def snapshot(module, args, out):
        name = names.get(id(module))
        if name is None or name in layer_names or not tool.module_flop_count:
            return
        direct.extend(pair_entries(tool.module_flop_count[-1], tool.module_mac_count[-1], fn_name))

    handle = register_module_forward_hook(snapshot)
    try:
        start()
        model(*inputs)  # grad mode as the tool's entry point leaves it (neither uses no_grad)
        modules = dict(model.named_modules())
        layers = {name: (tool.get_module_flops(modules[name]), tool.get_module_macs(modules[name]),
                         modules[name].__params__)
                  for name in module_layers(ir) if hasattr(modules.get(name), "__flops__")}
    finally:
        handle.remove()
        stop()
    grouped, unmatched = group_calls([(None, op, (flops, macs)) for op, flops, macs in direct], ir)
    functional = {layer: [(op, f, m) for op, (f, m) in calls] for layer, calls in grouped.items()}
    return Profile(layers, functional, [(op, f, m) for op, (f, m) in unmatched])



def attention_note(tool_label: str, patched: set[str], source: str) -> str:
    """nn.MultiheadAttention runs QK^T and AV through F.scaled_dot_product_attention (need_weights=False) or
    torch.bmm (need_weights=True, torch/nn/functional.py multi_head_attention_forward); the projections go through
    F.linear. A tool that patches neither misses those matmuls on either path."""
    paths = {"scaled_dot_product_attention": "F.scaled_dot_product_attention (need_weights=False)",
             "bmm": "torch.bmm (need_weights=True)"}
    unpatched = [text for name, text in paths.items() if name not in patched]
    if not unpatched:
        return ""
    return (f"MISSES the attention matmuls (QK^T and AV): {tool_label} does not patch {' nor '.join(unpatched)} "
            f"({source}), so only the projections (F.linear) are counted on that path")


def layer_rows(emit, profile: Profile, ir, kinds: dict, metrics: tuple[str, str, str], notes: dict) -> list:
    """flops, macs and params rows per IR layer; `notes` adds a message per layer name."""
    from ..records import COMPUTE, PARAMS

    flops_m, macs_m, params_m = metrics
    rows = []
    for layer in ir.layers:
        kind = kinds.get(layer.name, layer.kind)
        note = notes.get(layer.name, "")
        if layer.name in profile.layers:
            flops, macs, params = profile.layers[layer.name]
            rows += [emit.ok(layer.name, kind, COMPUTE, flops_m, flops, note),
                     emit.ok(layer.name, kind, COMPUTE, macs_m, macs, note),
                     emit.ok(layer.name, kind, PARAMS, params_m, params)]
        elif layer.name in profile.functional:
            calls = profile.functional[layer.name]
            text = "functional call(s) outside any module: " + ", ".join(f"patched {op}" for op, _, _ in calls)
            rows += [emit.ok(layer.name, kind, COMPUTE, flops_m, sum(f for _, f, _ in calls), text),
                     emit.ok(layer.name, kind, COMPUTE, macs_m, sum(m for _, _, m in calls), text)]
    return rows


def per_layer_values(profile: Profile, index: int) -> dict[str, float]:
    """index 0: flops, 1: macs."""
    values = {name: counts[index] for name, counts in profile.layers.items()}
    for name, calls in profile.functional.items():
        values[name] = values.get(name, 0) + sum(call[index + 1] for call in calls)
    return values


def total_notes(total, values: dict, profile: Profile, ir, basis: str, label: str, index: int) -> str:
    from ._torch_common import coincidence_note

    notes = []
    if profile.unmatched:
        notes.append("patched calls outside every layer of the IR: "
                     + ", ".join(f"{call[0]} {call[index + 1]:,}" for call in profile.unmatched))
    attributed = sum(values.values()) + sum(call[index + 1] for call in profile.unmatched)
    if attributed != total:
        notes.append(f"a second profiled forward attributes {attributed:,} to layers, not {total:,}")
    notes.append(coincidence_note(total, values, ir, basis, label))
    return "; ".join(n for n in notes if n)


def join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def profiler_records(emit, profile: Profile, ir, kinds: dict, metrics: tuple[str, str, str], tool_label: str,
                     tool: ModuleType, attention_source: str, totals: tuple, params_note: str) -> list:
    """Per-layer rows plus the three totals (FLOPs, MACs, params) of a calflops/DeepSpeed run: both tools share
    the same patched-functional profiler design, so their records are built the same way."""
    from ..records import COMPUTE, PARAMS, TOTAL

    flops, macs, params = totals
    patched = {getattr(f, "__name__", "") for f in tool.old_functions.values()}
    note = attention_note(tool_label, patched, attention_source)
    notes = {layer.name: note for layer in ir.layers if layer.kind == "attention" and note}
    records = layer_rows(emit, profile, ir, kinds, metrics, notes)
    missed = f"misses the attention matmuls of: {', '.join(notes)}" if notes else ""
    for index, (value, basis) in enumerate(((flops, "flops"), (macs, "macc"))):
        detail = total_notes(value, per_layer_values(profile, index), profile, ir, basis,
                             f"{tool_label} {metrics[index]}", index)
        records.append(emit.ok(TOTAL, "", COMPUTE, metrics[index], value, join(missed, detail)))
    records.append(emit.ok(TOTAL, "", PARAMS, metrics[2], params, params_note))
    return records
