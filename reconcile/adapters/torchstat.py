"""torchstat (0.0.7): per-layer MAdd, Flops, params and memory, read through its internals.

`torchstat.stat()` (torchstat/statistics.py) builds its table in torchstat/reporter.py `report_format`, which calls
`DataFrame.append`, gone since pandas 2. Everything before the table still works, so this adapter replays
`ModelStat._analyze_model` (torchstat/statistics.py) without its `len(input_size) == 3` assertion and does
`report_format`'s arithmetic itself:
- `ModelHook(model, input_size)` (torchstat/model_hook.py) registers buffers on every leaf module, replaces
  `__call__` on each leaf module's *class* with `_sub_module_call_hook.wrap_call` (never undone), and runs one
  forward on `torch.rand(1, *input_size)`: batch 1 always. `wrap_call` fills `parameter_quantity`,
  `inference_memory` (output elements x 4 / 1024**2), `MAdd` (compute_madd.py), `Flops` (compute_flops.py) and
  `Memory` = (read, write) elements x itemsize (compute_memory.py).
- `convert_leaf_modules_to_stat_tree(...).get_collected_stat_nodes(1)` (statistics.py, stat_tree.py) gives the
  rows `stat()` prints at its default granularity 1: the leaf modules in `named_modules` order.
The labels recorded are the column names `report_format` prints: params, memory(MB), MAdd, Flops, MemRead(B),
MemWrite(B). Users of torchstat report that MAdd and Flops are swapped; that is the diff engine's to explain.
"""
from __future__ import annotations

import contextlib
import io
import re
import traceback
from pathlib import Path
from typing import Iterator, Optional

from . import layer_kinds
from ..records import COMPUTE, MEMORY, PARAMS, TOTAL, UNSUPPORTED, Emitter, Record

TOOL = "torchstat"
FRAMEWORK = "torch"
WORKER = "torch"
DISTRIBUTION = "torchstat"

# report_format's column labels, in its column order, with what each claims to be.
COLUMNS = (("params", PARAMS), ("memory(MB)", MEMORY), ("MAdd", COMPUTE), ("Flops", COMPUTE),
           ("MemRead(B)", MEMORY), ("MemWrite(B)", MEMORY))
# compute_madd / compute_flops / compute_memory print "[MAdd]: GELU is not supported!" and return 0 / (0, 0).
_NOT_SUPPORTED = re.compile(r"^\[(MAdd|Flops|Memory)\]: (\w+) is not supported!$")
_TAG_COLUMNS = {"MAdd": ("MAdd",), "Flops": ("Flops",), "Memory": ("MemRead(B)", "MemWrite(B)")}
_ABSENT = object()


class TorchstatError(RuntimeError):
    """torchstat crashed on a model; the message names the layer and the torchstat function."""


def version() -> str:
    from . import distribution_version

    return distribution_version(DISTRIBUTION)


def unavailable() -> Optional[str]:
    from . import missing

    return missing(DISTRIBUTION, "torchstat")



def module_classes(model) -> set:
    """Every nn.Module class on the MRO of the model's modules, nn.Module itself included: the classes whose
    `__call__` ModelHook._sub_module_call_hook may overwrite."""
    import torch.nn as nn

    return {cls for m in model.modules() for cls in type(m).__mro__
            if isinstance(cls, type) and issubclass(cls, nn.Module)}


@contextlib.contextmanager
def call_attributes_restored(classes) -> Iterator[None]:
    """Undo ModelHook's class-level `__call__` patches (torchstat/model_hook.py `_sub_module_call_hook`), even
    when it crashes half-way, so the process's nn.Module classes are as they were."""
    saved = {cls: cls.__dict__.get("__call__", _ABSENT) for cls in classes}
    try:
        yield
    finally:
        for cls, attr in saved.items():
            current = cls.__dict__.get("__call__", _ABSENT)
            if current is attr:
                continue
            if attr is _ABSENT:
                delattr(cls, "__call__")
            else:
                setattr(cls, "__call__", attr)


def parse_not_supported(printed: str) -> dict[str, set[str]]:
    """Column label -> module class names torchstat printed as not supported (and counted 0)."""
    found: dict[str, set[str]] = {}
    for line in printed.splitlines():
        match = _NOT_SUPPORTED.match(line.strip())
        if match:
            for column in _TAG_COLUMNS[match.group(1)]:
                found.setdefault(column, set()).add(match.group(2))
    return found


def crashed_layer(exc: BaseException, names: dict[int, str]) -> str:
    """The layer torchstat was measuring when it raised: the innermost `wrap_call` frame's `module` local
    (torchstat/model_hook.py `_sub_module_call_hook.wrap_call`)."""
    tb, found = exc.__traceback__, ""
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == "wrap_call" and "torchstat" in frame.f_code.co_filename:
            module, inputs = frame.f_locals.get("module"), frame.f_locals.get("input") or ()
            shape = tuple(inputs[0].shape) if inputs and hasattr(inputs[0], "shape") else "?"
            found = f"layer {names.get(id(module), '?')} ({type(module).__name__}, input shape {shape})"
        tb = tb.tb_next
    return found or "the model"


def crash_message(ver: str, exc: BaseException, names: dict[int, str]) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "torchstat" in f.filename]
    where = ""
    if frames:
        last = frames[-1]
        where = f" in torchstat/{Path(last.filename).name} {last.name}" + (f" (`{last.line}`)" if last.line else "")
    detail = f": {exc}" if str(exc) else ""
    return f"torchstat {ver} crashed on {crashed_layer(exc, names)}: {type(exc).__name__}{detail}{where}"


def track_calls(model) -> tuple[set, list]:
    """Names of modules whose forward ran (a forward hook fires inside ModelHook's wrapped call). A leaf that never
    runs as a module keeps ModelHook's zero-initialised buffers."""
    called: set[str] = set()
    handles = [m.register_forward_hook(lambda mod, inp, out, n=name: called.add(n))
               for name, m in model.named_modules()]
    return called, handles


def stat_nodes(model, input_size: tuple[int, ...], ver: str) -> tuple[list, str]:
    """The rows stat() would print, and what torchstat printed while measuring (its "not supported" lines)."""
    from torchstat.model_hook import ModelHook
    from torchstat.statistics import convert_leaf_modules_to_stat_tree

    names = {id(m): n for n, m in model.named_modules()}
    printed = io.StringIO()
    with call_attributes_restored(module_classes(model)):
        try:
            with contextlib.redirect_stdout(printed):
                hook = ModelHook(model, input_size)
        except Exception as exc:
            raise TorchstatError(crash_message(ver, exc, names)) from exc
    tree = convert_leaf_modules_to_stat_tree(hook.retrieve_leaf_modules())
    return tree.get_collected_stat_nodes(1), printed.getvalue()


def node_values(node) -> dict[str, float]:
    """One leaf StatNode's columns, as reporter.report_format reads them (leaf nodes only: StatNode.Memory on a
    node with children prints and accumulates in place)."""
    from ..records import exact

    read, write = node.Memory
    return {"params": exact(node.parameter_quantity), "memory(MB)": float(node.inference_memory),
            "MAdd": exact(node.MAdd), "Flops": exact(node.Flops), "MemRead(B)": exact(read),
            "MemWrite(B)": exact(write)}


def layer_records(emit: Emitter, name: str, type_name: str, kind: str, values: dict, called: bool,
                  not_supported: dict[str, set[str]], shapes: str) -> list[Record]:
    rows = []
    for column, quantity in COLUMNS:
        if not called:
            msg = (f"{name} ({type_name}) never ran as a module in the forward, so torchstat {emit.tool_version} "
                   "never measured it (model_hook.py wrap_call): its buffers keep their initial 0, counted in totals")
            rows.append(emit.status(UNSUPPORTED, msg, name, kind, quantity, column))
        elif type_name in not_supported.get(column, ()):
            source = "compute_memory" if column.startswith("Mem") else f"compute_{column.lower()}"
            msg = (f"torchstat {emit.tool_version} {source}.py has no rule for {type_name}: printed "
                   f"'not supported' and counted 0")
            rows.append(emit.status(UNSUPPORTED, msg, name, kind, quantity, column))
        else:
            rows.append(emit.ok(name, kind, quantity, column, values[column], shapes))
    return rows


def total_records(emit: Emitter, table: list[dict], batch: int, zeroed: list[str]) -> list[Record]:
    """The total row reporter.report_format appends: column sums, except MemRead(B)/MemWrite(B), which it fills
    from the loop variables `mread, mwrite`, i.e. the last layer's values; plus MemR+W(B), the true sum."""
    notes = []
    if batch != 1:
        notes.append(f"torchstat is per sample: ModelHook always runs batch 1 (this spec has batch {batch})")
    if zeroed:
        notes.append(f"includes 0 for what torchstat could not count: {', '.join(zeroed)}")
    note = "; ".join(notes)
    rows = [emit.ok(TOTAL, "", quantity, column, sum(row[column] for row in table), note)
            for column, quantity in COLUMNS if not column.startswith("Mem")]
    last = table[-1] if table else {"MemRead(B)": 0, "MemWrite(B)": 0}
    for column in ("MemRead(B)", "MemWrite(B)"):
        true_sum = sum(row[column] for row in table)
        quirk = "" if true_sum == last[column] else (
            f"as report_format prints it: the last layer's {column} (loop variable), not the sum {true_sum}")
        rows.append(emit.ok(TOTAL, "", MEMORY, column, last[column], "; ".join(filter(None, [quirk, note]))))
    memrw = sum(row["MemRead(B)"] + row["MemWrite(B)"] for row in table)
    rows.append(emit.ok(TOTAL, "", MEMORY, "MemR+W(B)", memrw, note))
    return rows


def count(spec, emit: Emitter) -> list[Record]:
    from ..errors import UserError
    from ..models import example_input, torch_module

    example_input(spec, None, TOOL)  # a model on the meta device: a clear error row, not a crash inside the tool
    if spec.token_model:
        raise UserError(f"torchstat builds its own input (torch.rand(1, *input_size)) of floats and cannot feed token ids to {spec.name}")
    kinds = layer_kinds(spec)
    model = torch_module(spec)  # fresh: ModelHook registers buffers on every leaf module
    types = {n: type(m).__name__ for n, m in model.named_modules()}
    called, handles = track_calls(model)
    try:
        nodes, printed = stat_nodes(model, tuple(spec.input_shape[1:]), emit.tool_version)
    finally:
        for handle in handles:
            handle.remove()
    not_supported = parse_not_supported(printed)
    records: list[Record] = []
    table: list[dict] = []
    zeroed: list[str] = []
    for node in nodes:
        values = node_values(node)
        table.append(values)
        type_name = types.get(node.name, "")
        shapes = f"input shape {node.input_shape}, output shape {node.output_shape} (per sample)"
        rows = layer_records(emit, node.name, type_name, kinds.get(node.name, type_name), values,
                             node.name in called, not_supported, shapes)
        records.extend(rows)
        bad = sorted({r.metric for r in rows if r.status == UNSUPPORTED}, key=[c for c, _ in COLUMNS].index)
        if bad:
            zeroed.append(f"{node.name} ({type_name}: {', '.join(bad)})")
    records.extend(total_records(emit, table, spec.input_shape[0], zeroed))
    return records
