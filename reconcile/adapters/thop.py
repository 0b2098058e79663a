"""thop (pytorch-OpCounter, 0.1.1.post2209072238): per-module MACs and params from its own layer info.

How thop 0.1.1 counts (thop/profile.py, `profile`):
- `add_hooks` registers `total_ops` / `total_params` buffers on *every* module and a forward hook only on modules
  whose exact type is a key of `register_hooks` (or `custom_ops`); `count_parameters`
  (thop/vision/basic_hooks.py) fills `total_params` only for those, and only when they run.
- `dfs_count` then walks `named_children`: a hooked module (not Sequential/ModuleList) contributes its buffers;
  any other module is recursed into, so a module with no rule and no children adds 0 ops and an int 0 params.
  With `ret_layer_info=True` it returns `(total_ops, total_params, {child: (ops, params, {grandchildren})})`.
- It pops the buffers only from hooked modules, so unhooked ones keep `total_ops`/`total_params`: the model we
  hand it is built fresh for this job and thrown away.
- Module hooks never see functional ops (F.relu, x + y, matmul): nothing is emitted for them here, the diff
  engine names what is missing against the IR.
"""
from __future__ import annotations

from typing import Iterator, Optional

from . import layer_kinds
from ..records import COMPUTE, PARAMS, TOTAL, UNSUPPORTED, Emitter, Record

TOOL = "thop"
FRAMEWORK = "torch"
WORKER = "torch"
DISTRIBUTION = "thop"


def version() -> str:
    from . import distribution_version

    return distribution_version(DISTRIBUTION)


def unavailable() -> Optional[str]:
    from . import missing

    return missing(DISTRIBUTION, "thop")



def has_rule(module) -> bool:
    """thop/profile.py `profile.add_hooks`: a rule is looked up by exact type in `register_hooks`, so subclasses
    get none (nn.MultiheadAttention's `out_proj` is a NonDynamicallyQuantizableLinear, not an nn.Linear). No
    `custom_ops` are passed: thop's defaults are what is being measured."""
    from thop.profile import register_hooks

    return type(module) in register_hooks


def is_container(module) -> bool:
    """thop/profile.py `profile.dfs_count` recurses into Sequential/ModuleList even though they have a rule."""
    import torch.nn as nn

    return isinstance(module, (nn.Sequential, nn.ModuleList))


def walk(model, tree: dict, kinds: dict[str, str], prefix: str = "") -> Iterator[tuple[str, object, tuple]]:
    """Yield (qualified name, module, (ops, params)) for each layer of thop's layer-info tree.

    A layer is a module thop counted with a rule, an IR layer (torch.nn modules are IR leaves, e.g.
    nn.MultiheadAttention, whose unhooked `out_proj` child is never called as a module), or a childless module.
    Any other entry is a user container: its children are the layers."""
    children = dict(model.named_children())
    for name, (ops, params, sub) in tree.items():
        qualified = f"{prefix}{name}"
        module = children[name]
        counted = has_rule(module) and not is_container(module)
        if counted or qualified in kinds or not sub:
            yield qualified, module, (ops, params)
        else:
            yield from walk(module, sub, kinds, qualified + ".")


def track_calls(model) -> tuple[set, list]:
    """Names of modules whose forward ran: thop's `count_parameters` hook only fires on a call, so a module that
    never runs reports 0 params even with a rule."""
    called: set[str] = set()
    handles = [m.register_forward_hook(lambda mod, inp, out, n=name: called.add(n))
               for name, m in model.named_modules()]
    return called, handles


def no_rule_message(ver: str, module, descendants: list[str]) -> str:
    kind = type(module).__name__
    extra = f" (nor for its submodules: {', '.join(descendants)})" if descendants else ""
    return f"thop {ver} has no rule for {kind}{extra}: counted 0 ops, 0 params"


def layer_records(emit: Emitter, name: str, module, ops, params, kind: str, called: bool) -> tuple[list, bool]:
    """Records of one layer and whether thop silently counted it as 0 for lack of a rule."""
    if not has_rule(module):
        descendants = [n for n, _ in module.named_modules() if n]
        msg = no_rule_message(emit.tool_version, module, descendants)
        return [emit.status(UNSUPPORTED, msg, name, kind, COMPUTE, "macs"),
                emit.status(UNSUPPORTED, msg, name, kind, PARAMS, "params")], True
    note = "" if called else "module never ran in forward: thop's hooks did not fire, so it reports 0"
    return [emit.ok(name, kind, COMPUTE, "macs", ops, note), emit.ok(name, kind, PARAMS, "params", params, note)], False


def total_records(emit: Emitter, ops, params, zeroed: list[str]) -> list[Record]:
    msg = ""
    if zeroed:
        msg = f"includes 0 for layers thop has no rule for: {', '.join(zeroed)}"
    return [emit.ok(TOTAL, "", COMPUTE, "macs", ops, msg), emit.ok(TOTAL, "", PARAMS, "params", params, msg)]


def count(spec, emit: Emitter) -> list[Record]:
    import torch
    from thop import profile

    from ..models import torch_module

    kinds = layer_kinds(spec)
    model = torch_module(spec)  # fresh: thop leaves total_ops/total_params buffers on modules it did not hook
    called, handles = track_calls(model)
    try:
        # thop/profile.py `profile(model, inputs, custom_ops=None, verbose=True, ret_layer_info=False,
        # report_missing=False)`; it runs the forward under no_grad in eval mode at the spec's batch.
        ops, params, tree = profile(model, inputs=(torch.zeros(*spec.input_shape),), verbose=False,
                                    ret_layer_info=True)
    finally:
        for handle in handles:
            handle.remove()
    records: list[Record] = []
    zeroed: list[str] = []
    for name, module, (layer_ops, layer_params) in walk(model, tree, kinds):
        kind = kinds.get(name, type(module).__name__)
        rows, no_rule = layer_records(emit, name, module, layer_ops, layer_params, kind, name in called)
        records.extend(rows)
        if no_rule:
            zeroed.append(f"{name} ({type(module).__name__})")
    records.extend(total_records(emit, ops, params, zeroed))
    return records
