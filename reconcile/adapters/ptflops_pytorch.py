"""ptflops (0.7.5), pytorch backend: module forward hooks plus monkey-patched torch functionals.

How it counts (ptflops/pytorch_engine.py `get_flops_pytorch`):
- `start_flops_count` registers a forward hook from ptflops/pytorch_ops.py `MODULES_MAPPING` on every module whose
  exact type is a key (Conv, Linear, pools, BN/LayerNorm, ReLU/GELU, MultiheadAttention, ...); each adds to its
  module's `__flops__`;
- with `backend_specific_config={'count_functional': True}` (the default) `patch_functional` and
  `patch_tensor_ops` replace F.relu, F.gelu, F.max_pool2d, F.adaptive_avg_pool2d, F.softmax, torch.matmul,
  torch.bmm, torch.add, ... by `torch_function_wrapper`s that append to a list summed into the total;
- the total = sum of the hooked modules' `__flops__` / batch (`compute_average_flops_cost`) + the functional list.
So an nn.MaxPool2d / nn.ReLU / nn.GELU is counted twice: its module hook fires, and so does the patch of the
F.max_pool2d / F.relu / F.gelu its forward calls. nn.MultiheadAttention is counted twice when its forward reaches
patched ops (torch.bmm, F.softmax: the need_weights=True path): its module hook already counts QK^T, softmax, AV.

Per layer, this adapter records what ptflops added to its total while that layer ran: the module hook's
`__flops__` (read when `compute_average_flops_cost` runs, i.e. before ptflops deletes them) plus every patched
functional that fired inside the layer (observed around `torch_function_wrapper.__call__`); a functional called
outside any module layer (the document's F.relu) goes to the IR's functional layer of the same op. Every record
names both parts, so a double count is visible, and the parts are checked to sum to ptflops' own total.
"""
from __future__ import annotations

import io
from typing import Optional

from . import layer_kinds
from ._torch_common import ModuleStack, coincidence_note, group_calls, ir_of, module_layers, patched, qualified_names
from ..records import COMPUTE, PARAMS, TOTAL, Emitter, Record

TOOL = "ptflops_pytorch"
FRAMEWORK = "torch"
WORKER = "torch"
DISTRIBUTION = "ptflops"
BACKEND = "pytorch"
METRIC = "MACs"  # ptflops prints "Computational complexity: ... GMac" and per layer "... Mac, ...% MACs"

# pytorch_ops.py names of the ops whose patch duplicates a module hook on the module that calls them.
_ATTENTION_PATCHES = {"bmm", "matmul", "softmax", "baddbmm", "mm"}


def version() -> str:
    from . import distribution_version

    return distribution_version(DISTRIBUTION)


def unavailable() -> Optional[str]:
    from . import missing

    return missing(DISTRIBUTION, "ptflops")


def function_name(op) -> str:
    return getattr(op, "__name__", str(op))


def observe_functionals(stack: ModuleStack, layers: list[str], calls: list):
    """Wrap ptflops/pytorch_engine.py `torch_function_wrapper.__call__`: after the original appends its count to
    the collector, note (innermost layer, op, count)."""
    def make(original):
        def observed(self, *args, **kwargs):
            before = len(self.collector)
            innermost = stack.innermost(layers)
            out = original(self, *args, **kwargs)
            calls.append((innermost, function_name(self.op), self.collector[before]))
            return out
        return observed
    return make


def observe_modules(snapshot: dict, names: dict[int, str]):
    """Wrap ptflops/pytorch_engine.py `compute_average_flops_cost`, which `get_flops_pytorch` calls once after the
    forward: snapshot every hooked module's `__flops__` and `__params__` and the batch counter."""
    from ptflops.pytorch_engine import is_supported_instance

    def make(original):
        def observed(self):
            snapshot["batch"] = self.__batch_counter__
            for module in self.modules():
                if is_supported_instance(module) and hasattr(module, "__flops__"):
                    snapshot.setdefault("modules", {})[names[id(module)]] = (module.__flops__, module.__params__,
                                                                             type(module).__name__)
            return original(self)
        return observed
    return make


def run_ptflops(model, spec, layers: list[str]) -> tuple[int, int, dict, list]:
    """ptflops' (MACs, params) plus what it added per hooked module and per patched call; `layers` are the IR's
    module layers (the names a patched call is attributed to)."""
    import ptflops.pytorch_engine as engine
    from ptflops import get_model_complexity_info

    from ..models import example_input

    snapshot: dict = {}
    calls: list = []
    with ModuleStack(model) as stack, \
            patched(engine.torch_function_wrapper, "__call__", observe_functionals(stack, layers, calls)), \
            patched(engine, "compute_average_flops_cost", observe_modules(snapshot, qualified_names(model))):
        # pytorch_engine.py get_flops_pytorch: input = new_empty((1, *input_res)); batch is always 1 unless an
        # input_constructor is given, so pass one that builds the spec's batch.
        macs, params = get_model_complexity_info(
            model, tuple(spec.input_shape[1:]), as_strings=False, print_per_layer_stat=False, ost=io.StringIO(),
            backend=BACKEND, input_constructor=lambda _res: example_input(spec, model, TOOL))
    if macs is None:
        raise RuntimeError("ptflops returned None: get_flops_pytorch caught an exception during the forward")
    return macs, params, snapshot, calls


def describe_parts(module_part, module_type: str, functionals: list[tuple[str, float]]) -> str:
    parts = []
    if module_part is not None:
        parts.append(f"module hook for {module_type} {module_part:,.0f}")
    parts += [f"patched {op} {value:,.0f}" for op, value in functionals]
    return " + ".join(parts)


def double_count_note(module_type: Optional[str], functionals: list[tuple[str, float]]) -> str:
    """A hooked module whose forward also fired patched functionals is counted twice (pytorch_engine.py)."""
    if module_type is None or not functionals:
        return ""
    ops = sorted({op for op, _ in functionals})
    what = "attention" if module_type == "MultiheadAttention" and set(ops) & _ATTENTION_PATCHES else module_type
    return (f"COUNTED TWICE: the {module_type} module hook (pytorch_ops.py MODULES_MAPPING) and the patched "
            f"{', '.join(ops)} its forward calls (pytorch_engine.py patch_functional/patch_tensor_ops) both add "
            f"to the total for the same {what} work")


def count(spec, emit: Emitter) -> list[Record]:
    from ..models import torch_module

    kinds = layer_kinds(spec)
    ir = ir_of(spec)
    model = torch_module(spec)
    macs, params, snapshot, calls = run_ptflops(model, spec, module_layers(ir))
    batch = snapshot.get("batch", 1) or 1
    modules = snapshot.get("modules", {})
    by_layer_calls, unmatched = group_calls(calls, ir)
    records: list[Record] = []
    per_layer: dict[str, float] = {}
    doubled = []
    for layer in ir.layers:
        name = layer.name
        hooked = modules.get(name)
        fired = by_layer_calls.get(name, [])
        if hooked is None and not fired:
            continue
        module_part = hooked[0] / batch if hooked else None
        value = (module_part or 0) + sum(v for _, v in fired)
        per_layer[name] = value
        note = describe_parts(module_part, hooked[2] if hooked else "", fired)
        twice = double_count_note(hooked[2] if hooked else None, fired)
        if twice:
            doubled.append(f"{name} ({hooked[2]})")
        if hooked and batch != 1:
            note += f"; the module part is per sample (divided by the batch {batch}), the patched part is not"
        records.append(emit.ok(name, kinds.get(name, layer.kind), COMPUTE, METRIC, value,
                               "; ".join(filter(None, [twice, note]))))
        if hooked:
            records.append(emit.ok(name, kinds.get(name, layer.kind), PARAMS, "params", hooked[1]))
    notes = []
    if doubled:
        notes.append(f"counts twice (module hook + patched functional): {', '.join(doubled)}")
    if unmatched:
        notes.append("patched functionals outside any layer of the IR: "
                     + ", ".join(f"{op} {v:,.0f}" for op, v in unmatched))
    attributed = sum(per_layer.values()) + sum(v for _, v in unmatched)
    if abs(attributed - macs) > 0.5:
        notes.append(f"the observed parts sum to {attributed:,.0f}, not ptflops' {macs:,}")
    notes.append(coincidence_note(macs, per_layer, ir, "macc", f"ptflops {METRIC}"))
    records.append(emit.ok(TOTAL, "", COMPUTE, METRIC, macs, "; ".join(filter(None, notes))))
    records.append(emit.ok(TOTAL, "", PARAMS, "params", params,
                           "trainable parameters (pytorch_engine.py get_model_parameters_number)"))
    return records

