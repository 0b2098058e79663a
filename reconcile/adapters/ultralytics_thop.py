"""ultralytics-thop (2.2.3): Ultralytics' fork of thop, per-module MACs and params from its layer-info tree.

It installs into the same `thop` package folder as thop 0.1.1, so it is never installed into the venv: `make
install` puts it in .cache/tools/ultralytics-thop-<pin> (pip --target, --no-deps), and this adapter imports `thop`
from there inside its own job process (checking `thop.__file__`), after taking any other `thop` out of
`sys.modules`; both are restored afterwards, so a thop 0.1.1 imported earlier in the same process is unaffected.

How it counts (thop/profile.py `profile(model, inputs, ret_layer_info=True)`, under torch.no_grad in eval mode):
- `_resolve_rule` walks each module type's MRO for a rule in `register_hooks` (so subclasses such as
  MultiheadAttention's NonDynamicallyQuantizableLinear out_proj get the Linear rule); `zero_ops` modules (ReLU,
  MaxPool, Dropout, containers) and modules without a rule (GELU) count 0;
- nn.MultiheadAttention has its own rule, thop/vision/basic_hooks.py `count_multihead_attention`: projections +
  the two attention matmuls + softmax at (3L - 1) ops per row (thop/vision/calc_func.py `calculate_softmax`);
- `_FunctionCounter` (a TorchFunctionMode) counts matmul/bmm/einsum/F.linear/sdpa run outside every module
  that has a rule of its own; those are in the total only;
- `dfs_count` returns {child: (ops, params, {grandchildren})}, ops including the subtree.
"""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Iterator, Optional

from . import layer_kinds
from ._torch_common import coincidence_note, ir_of
from ..records import COMPUTE, PARAMS, TOTAL, Emitter, Record

TOOL = "ultralytics_thop"
FRAMEWORK = "torch"
WORKER = "torch"
DISTRIBUTION = "ultralytics-thop"
ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = ROOT / "constraints.txt"
CACHE = ROOT / ".cache" / "tools"


def pinned() -> Optional[str]:
    """The version constraints.txt pins (the Makefile installs that one)."""
    if CONSTRAINTS.is_file():
        for line in CONSTRAINTS.read_text().splitlines():
            if line.strip().lower().startswith(DISTRIBUTION + "=="):
                return line.split("==", 1)[1].strip()
    return None


def install_dir() -> Path:
    return CACHE / f"{DISTRIBUTION}-{pinned() or 'unpinned'}"


def version() -> str:
    from importlib.metadata import distributions

    for dist in distributions(path=[str(install_dir())]):
        if dist.metadata["Name"].lower() == DISTRIBUTION:
            return dist.version
    return "not installed"


def unavailable() -> Optional[str]:
    if pinned() is None:
        return f"{DISTRIBUTION} has no pin in {CONSTRAINTS}"
    if not (install_dir() / "thop" / "__init__.py").is_file():
        return (f"{DISTRIBUTION} is not installed at {install_dir()} (it shares the `thop` package folder with "
                f"thop, so it lives outside the venv): run `make install`")
    return None


@contextlib.contextmanager
def isolated_thop() -> Iterator[object]:
    """Import `thop` from the ultralytics-thop folder; put back whatever `thop` modules were loaded before."""
    import importlib

    saved = {name: mod for name, mod in sys.modules.items() if name == "thop" or name.startswith("thop.")}
    for name in saved:
        del sys.modules[name]
    folder = str(install_dir())
    sys.path.insert(0, folder)
    try:
        thop = importlib.import_module("thop")
        if not str(Path(thop.__file__).resolve()).startswith(str(Path(folder).resolve())):
            raise RuntimeError(f"imported thop from {thop.__file__}, not from {folder}")
        yield importlib.import_module("thop.profile")  # `thop.profile` the attribute is the function
    finally:
        sys.path.remove(folder)
        for name in [n for n in sys.modules if n == "thop" or n.startswith("thop.")]:
            del sys.modules[name]
        sys.modules.update(saved)


def has_rule(profile_module, module) -> bool:
    """thop/profile.py `_resolve_rule`: the first type on the MRO with a rule; zero_ops counts as no work."""
    for cls in type(module).__mro__:
        if cls in profile_module.register_hooks:
            return profile_module.register_hooks[cls] is not profile_module.zero_ops
    return False


def walk(model, tree: dict, kinds: dict, prefix: str = "") -> Iterator[tuple[str, object, tuple]]:
    """(qualified name, module, (ops, params)) for each IR layer in the tree; user containers are recursed into."""
    children = dict(model.named_children())
    for name, (ops, params, sub) in tree.items():
        qualified = f"{prefix}{name}"
        if qualified in kinds or not sub:
            yield qualified, children[name], (ops, params)
        else:
            yield from walk(children[name], sub, kinds, qualified + ".")


def rule_note(profile_module, module, layer) -> str:
    cls = type(module).__name__
    if layer is not None and layer.kind == "attention":
        return ("thop/vision/basic_hooks.py count_multihead_attention: projections + QK^T and AV + softmax at "
                "(3L-1) ops per row of L (calc_func.py calculate_softmax: L exps, L-1 adds, L divisions)")
    if not has_rule(profile_module, module):
        return f"no counting rule for {cls} (profile.py _resolve_rule / zero_ops): counted 0"
    return ""


def count(spec, emit: Emitter) -> list[Record]:
    from ..models import example_input, torch_module

    kinds = layer_kinds(spec)
    ir = ir_of(spec)
    model = torch_module(spec)
    with isolated_thop() as profile_module:
        ops, params, tree = profile_module.profile(model, inputs=(example_input(spec, model, TOOL),), verbose=False,
                                         ret_layer_info=True)
        rows = list(walk(model, tree, kinds))
        layers = {layer.name: layer for layer in ir.layers}
        notes = {name: rule_note(profile_module, module, layers.get(name)) for name, module, _ in rows}
    records: list[Record] = []
    per_layer = {}
    for name, module, (layer_ops, layer_params) in rows:
        kind = kinds.get(name, type(module).__name__)
        per_layer[name] = layer_ops
        records.append(emit.ok(name, kind, COMPUTE, "macs", layer_ops, notes[name]))
        records.append(emit.ok(name, kind, PARAMS, "params", layer_params))
    extra = ops - sum(per_layer.values())
    total_notes = []
    if extra:
        total_notes.append(f"{extra:,.0f} from functional products outside every module with a rule "
                           f"(profile.py _FunctionCounter), not attributed to a layer")
    total_notes.append(coincidence_note(ops, per_layer, ir, "macc", "ultralytics-thop macs"))
    records.append(emit.ok(TOTAL, "", COMPUTE, "macs", ops, "; ".join(filter(None, total_notes))))
    records.append(emit.ok(TOTAL, "", PARAMS, "params", params))
    return records
