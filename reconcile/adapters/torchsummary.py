"""torchsummary (1.5.1): per-layer params and output shapes parsed from the table it prints.

torchsummary/torchsummary.py `summary(model, input_size, batch_size=-1, device="cuda")` returns None and prints:
- one row per forward-hook firing, labelled `f"{class_name}-{index}"`: `register_hook` hooks every module except
  nn.Sequential, nn.ModuleList and the model itself, so rows come in hook-firing order (a module called twice
  gives two rows). `hook` counts a row's params as the numel of `module.weight` plus `module.bias` only, so
  modules holding other parameters (nn.MultiheadAttention's `in_proj_weight`) show too few.
- totals (Total / Trainable / Non-trainable params) and size lines in MB (2 decimals, 4 bytes per number, outputs
  x2 "for gradients"), computed with `batch_size=-1`, i.e. per sample, though the forward runs at batch 2.
It has no compute count. Row labels are mapped to torch qualified names by hooking the same modules in the same
forward (our hooks are registered first, so they fire first for each call) and zipping the two sequences.
"""
from __future__ import annotations

import contextlib
import io
import re
import traceback
from pathlib import Path
from typing import Optional

from . import layer_kinds
from ..records import MEMORY, PARAMS, TOTAL, Emitter, Record

TOOL = "torchsummary"
FRAMEWORK = "torch"
WORKER = "torch"
DISTRIBUTION = "torchsummary"

# summary's row format is "{:>20}  {:>25} {:>15}": label (no spaces), str(list) shape, "{0:,}" params.
_ROW = re.compile(r"^\s*(?P<label>\S+)\s+(?P<shape>\[.*\])\s+(?P<params>-?[\d,]+)\s*$")
_LINE = re.compile(r"^(?P<label>[A-Za-z][^:]*): (?P<value>-?[\d,]+(?:\.\d+)?)$")
# What summary() sums for each params line (torchsummary.py `summary`, after the forward).
_PARAM_NOTES = {"Total params": "sum of the rows' Param # (each row: weight + bias numel only)",
                "Trainable params": "sum of the Param # of rows whose weight requires grad",
                "Non-trainable params": "Total params - Trainable params"}
_BATCH = 2  # summary: `x = [torch.rand(2, *in_size) ...]` ("batch_size of 2 for batchnorm")


class TorchsummaryError(RuntimeError):
    """torchsummary crashed or printed a table that cannot be mapped to module names."""


def version() -> str:
    from . import distribution_version

    return distribution_version(DISTRIBUTION)


def unavailable() -> Optional[str]:
    from . import missing

    return missing(DISTRIBUTION, "torchsummary")



def class_name(module) -> str:
    """The class name as torchsummary.py `summary.register_hook.hook` derives it for the row label."""
    return str(module.__class__).split(".")[-1].split("'")[0]


def hooked(module, model) -> bool:
    """torchsummary.py `summary.register_hook`'s rule for which modules get a row."""
    import torch.nn as nn

    return not isinstance(module, (nn.Sequential, nn.ModuleList)) and module is not model


def describe(value) -> str:
    if isinstance(value, (tuple, list)):
        return f"{type(value).__name__}({', '.join(type(v).__name__ for v in value)})"
    return type(value).__name__


def record_firing_order(model) -> tuple[list, list]:
    """(qualified name, module) per forward-hook firing of the modules torchsummary hooks, and the handles."""
    fired: list[tuple[str, object]] = []
    handles = [m.register_forward_hook(lambda mod, inp, out, n=name: fired.append((n, mod)))
               for name, m in model.named_modules() if hooked(m, model)]
    return fired, handles


def parse_table(printed: str) -> tuple[list[tuple[str, str, int]], dict[str, float]]:
    """Rows (label, output shape, Param #) between the two '=' rules, and the `Label: value` lines after."""
    rows, totals, section = [], {}, 0
    for line in printed.splitlines():
        if line.startswith("====="):
            section += 1
            continue
        if section == 1:
            match = _ROW.match(line)
            if not match:
                raise TorchsummaryError(f"cannot parse torchsummary row {line!r}")
            rows.append((match["label"], match["shape"], int(match["params"].replace(",", ""))))
        elif section >= 2:
            match = _LINE.match(line.strip())
            if match:
                text = match["value"].replace(",", "")
                totals[match["label"]] = float(text) if "." in text else int(text)
    return rows, totals


def crash_message(ver: str, exc: BaseException, names: dict[int, str]) -> str:
    """Name the module whose hook raised (the `module` local of torchsummary.py `hook`) and the code line."""
    layer, tb = "the model", exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == "hook" and "torchsummary" in frame.f_code.co_filename:
            module = frame.f_locals.get("module")
            layer = (f"layer {names.get(id(module), '?')} ({type(module).__name__}, output "
                     f"{describe(frame.f_locals.get('output'))})")
        tb = tb.tb_next
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "torchsummary" in f.filename]
    where = ""
    if frames:
        named = [f for f in frames if not f.name.startswith("<")] or frames
        where = f" in torchsummary/{Path(frames[-1].filename).name} {named[-1].name}"
        where += f" (`{frames[-1].line}`)" if frames[-1].line else ""
    detail = f": {exc}" if str(exc) else ""
    return f"torchsummary {ver} crashed on {layer}: {type(exc).__name__}{detail}{where}"


def run_summary(model, input_size: tuple[int, ...], ver: str) -> tuple[str, list]:
    """summary()'s printed text and the (name, module) firing order of the same forward."""
    from torchsummary import summary

    names = {id(m): n for n, m in model.named_modules()}
    fired, handles = record_firing_order(model)
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            # device="cpu": the default "cuda" silently falls back to CPU tensors when CUDA is absent.
            summary(model, input_size=input_size, device="cpu")
    except Exception as exc:
        raise TorchsummaryError(crash_message(ver, exc, names)) from exc
    finally:
        for handle in handles:
            handle.remove()
    return printed.getvalue(), fired


def layer_names(rows: list, fired: list) -> list[str]:
    """Zip printed rows with hook firings, checking the class name in each label."""
    if len(rows) != len(fired):
        raise TorchsummaryError(f"torchsummary printed {len(rows)} rows but {len(fired)} hooked module calls ran")
    names = []
    for (label, _, _), (name, module) in zip(rows, fired):
        if label.rsplit("-", 1)[0] != class_name(module):
            raise TorchsummaryError(f"torchsummary row {label} does not match module {name} ({class_name(module)})")
        names.append(name)
    return names


def total_records(emit: Emitter, totals: dict[str, float], batch: int) -> list[Record]:
    per_sample = (f"per sample: torchsummary prints batch -1 and runs its forward at batch {_BATCH}"
                  + (f" (this spec has batch {batch})" if batch != 1 else ""))
    records = []
    for label, value in totals.items():
        if "(MB)" in label:
            note = f"printed to 2 decimals; 4 bytes per number, outputs x2 for gradients; {per_sample}"
            records.append(emit.ok(TOTAL, "", MEMORY, label, value, note))
        else:
            records.append(emit.ok(TOTAL, "", PARAMS, label, value, _PARAM_NOTES.get(label, "")))
    return records


def count(spec, emit: Emitter) -> list[Record]:
    from ..errors import UserError
    from ..models import example_input, torch_module

    example_input(spec, None, TOOL)  # a model on the meta device: a clear error row, not a crash inside the tool
    if spec.token_model:
        raise UserError(f"torchsummary builds its own input (torch.rand(2, *input_size)) of floats and cannot feed token ids to {spec.name}")
    kinds = layer_kinds(spec)
    model = torch_module(spec)  # fresh: a crashing summary() leaves its hooks registered
    printed, fired = run_summary(model, tuple(spec.input_shape[1:]), emit.tool_version)
    rows, totals = parse_table(printed)
    records: list[Record] = []
    for name, (label, shape, params) in zip(layer_names(rows, fired), rows):
        kind = kinds.get(name, label.rsplit("-", 1)[0])
        records.append(emit.ok(name, kind, PARAMS, "Param #", params,
                               f"torchsummary row {label}, output shape {shape}"))
    if "Total params" not in totals:
        raise TorchsummaryError("torchsummary printed no 'Total params' line")
    records.extend(total_records(emit, totals, spec.input_shape[0]))
    return records
