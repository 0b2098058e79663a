"""The long-table record schema every adapter emits (design.md, "Interfaces").

One row = one number a tool printed (or failed to print) for one layer or the model total (`layer` ==
`__total__`). `metric` is the tool's own label (torchstat: `MAdd`, `Flops`); `quantity` says what kind of number
it claims to be. Non-ok statuses carry the reason in `message` and an empty value, never a fake 0.

The last three columns say which model exactly the number is about (reconcile.identity): the input shape it ran
at (`1x3x224x224`), its batch, and `source_hash`, the hash of the spec with the content of its source files.
Every reader of a records.csv (which, explain, the report) matches on them, not on the name alone. The runner
fills them for every job (reconcile.runner.stamp); adapters leave them empty.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional, Union

COLUMNS = ["model", "framework", "tool", "tool_version", "layer", "layer_kind", "quantity", "metric", "value",
           "status", "message", "input_shape", "batch", "source_hash"]
IDENTITY_COLUMNS = ("input_shape", "batch", "source_hash")
TOTAL = "__total__"
MODEL_LEVEL = "__model__"  # a status row about the whole (tool, model) job: crash, timeout, skipped

PARAMS, COMPUTE, MEMORY = "params", "compute", "memory"
QUANTITIES = (PARAMS, COMPUTE, MEMORY)
OK, ERROR, UNSUPPORTED, SKIPPED = "ok", "error", "unsupported", "skipped"
STATUSES = (OK, ERROR, UNSUPPORTED, SKIPPED)

Number = Union[int, float]


def exact(value: Optional[Number]) -> Optional[Number]:
    """Tools return counts as floats (thop: 2293000.0); keep integers integral so CSVs are exact."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if hasattr(value, "item"):  # numpy / torch scalars
        return exact(value.item())
    return value


@dataclass(frozen=True)
class Record:
    model: str
    framework: str
    tool: str
    tool_version: str
    layer: str
    layer_kind: str
    quantity: str
    metric: str
    value: Optional[Number]
    status: str = OK
    message: str = ""
    input_shape: str = ""  # 1x3x224x224
    batch: Optional[int] = None
    source_hash: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"bad status {self.status!r}")
        if self.quantity not in QUANTITIES:
            raise ValueError(f"bad quantity {self.quantity!r}")

    def row(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Emitter:
    """Builds the records of one (tool, model) job, so adapters only say layer, metric and value."""

    model: str
    framework: str
    tool: str
    tool_version: str

    def ok(self, layer: str, layer_kind: str, quantity: str, metric: str, value: Number, message: str = "") -> Record:
        return Record(self.model, self.framework, self.tool, self.tool_version, layer, layer_kind, quantity, metric,
                      exact(value), OK, message)

    def status(self, status: str, message: str, layer: str = MODEL_LEVEL, layer_kind: str = "",
               quantity: str = COMPUTE, metric: str = "") -> Record:
        return Record(self.model, self.framework, self.tool, self.tool_version, layer, layer_kind, quantity, metric,
                      None, status, message)
