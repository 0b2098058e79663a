"""thop (pytorch-OpCounter): per-module MACs and params, for 0.1.1.post2209072238 and the 2020 releases.

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

Older releases (0.0.31.post2005241907, the one behind the document's 2,307,720) differ in what this adapter reads:
- thop/profile.py `profile(model, inputs, custom_ops=None, verbose=True)` has no `ret_layer_info`; its
  `dfs_count` returns totals only and starts from 0 rather than the root's own `total_ops`. The per-module
  `total_ops` / `total_params` buffers are the layer info, but `profile` pops them from every hooked module
  before it returns, so they are read by a forward hook on the root, which runs after all children's hooks.
- thop/utils.py does `from collections import Iterable`, gone since Python 3.10: the version matrix runs it with
  the `collections_abc_aliases` shim (reconcile/shims.py), applied in the child process only.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Iterator, Optional

from . import layer_kinds
from ..records import COMPUTE, PARAMS, TOTAL, UNSUPPORTED, Emitter, Record

TOOL = "thop"
FRAMEWORK = "torch"
WORKER = "torch"
DISTRIBUTION = "thop"
# Import shims an old release may need on this Python (reconcile/shims.py); the child records the ones it used.
SHIMS = ("collections_abc_aliases",)


def imported_from() -> Optional[Path]:
    """The folder the `thop` package is (or would be) imported from, without importing it: importing here would
    pin a version in a worker whose forked children must each import their own (reconcile/drift.py)."""
    spec = importlib.util.find_spec("thop")
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).parent.parent


def version() -> str:
    """The version of the thop that `import thop` gets on the current sys.path: the metadata next to the package
    (a `--target` install keeps its .dist-info beside it), else the installed distribution's."""
    from importlib.metadata import distributions

    from . import distribution_version

    folder = imported_from()
    if folder is not None:
        for dist in distributions(path=[str(folder)]):
            if (dist.metadata["Name"] or "").lower() == DISTRIBUTION:
                return normal_version(dist.version)
    return distribution_version(DISTRIBUTION)


def normal_version(raw: str) -> str:
    """thop's metadata says "0.0.31-2005241907"; pip and constraints.txt say "0.0.31.post2005241907"."""
    from packaging.version import InvalidVersion, Version

    try:
        return str(Version(raw))
    except InvalidVersion:
        return raw


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
    from thop import profile

    from ..models import example_input, torch_module

    kinds = layer_kinds(spec)
    model = torch_module(spec)  # fresh: thop leaves total_ops/total_params buffers on modules it did not hook
    called, handles = track_calls(model)
    try:
        ops, params, tree = profile_layers(profile, model, (example_input(spec, model, TOOL),))
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


def has_layer_info(profile) -> bool:
    """thop/profile.py `profile` gained `ret_layer_info` after 0.0.31 (it is in 0.0.4.post2109101452 and 0.1.1)."""
    import inspect

    return "ret_layer_info" in inspect.signature(profile).parameters


def snapshot_buffers(model) -> tuple[dict, object]:
    """Copy every module's `total_ops`/`total_params` buffer right after the forward pass, before thop's `profile`
    pops them. A hook registered on the root before `profile` adds its own runs after the root's forward, i.e.
    after every child's counting hook has fired (torch/nn/modules/module.py `_call_impl`)."""
    seen: dict = {}

    def grab(root, inputs, output):
        for module in root.modules():
            ops, params = module._buffers.get("total_ops"), module._buffers.get("total_params")
            if ops is not None:
                seen[module] = (ops.item(), params.item() if params is not None else 0)

    return seen, model.register_forward_hook(grab)


def layer_tree(module, buffers: dict) -> dict:
    """The `{child: (ops, params, {grandchildren})}` tree 0.1.1's `ret_layer_info` returns, rebuilt for releases
    without it by the same walk as their thop/profile.py `profile.dfs_count`: a hooked module that is not a
    Sequential/ModuleList is a leaf holding its buffers, anything else is the sum of its children."""
    tree = {}
    for name, child in module.named_children():
        if child in buffers and has_rule(child) and not is_container(child):
            tree[name] = (*buffers[child], {})
        else:
            sub = layer_tree(child, buffers)
            tree[name] = (sum(v[0] for v in sub.values()), sum(v[1] for v in sub.values()), sub)
    return tree


def profile_layers(profile, model, inputs) -> tuple[float, float, dict]:
    """(total ops, total params, layer tree) from whichever thop is imported."""
    # thop/profile.py `profile(model, inputs, custom_ops=None, verbose=True, ret_layer_info=False,
    # report_missing=False)` in 0.1.1; the forward runs under no_grad in eval mode at the spec's batch.
    if has_layer_info(profile):
        return profile(model, inputs=inputs, verbose=False, ret_layer_info=True)
    buffers, handle = snapshot_buffers(model)
    try:
        ops, params = profile(model, inputs=inputs, verbose=False)
    finally:
        handle.remove()
    return ops, params, layer_tree(model, buffers)
