"""The measured family of `which --quantity train-compute`: one training step measured at the dispatch level
(reconcile/training.py, in a job process), scaled to the training tokens, ranked beside the formula families, and
the distance of every formula from it ("6ND, which here is 1.3% below the measured forward+backward").

A candidate source for `which`: `measured_candidate(spec, tokens, printed)` returns the measured family's
candidate; `distance_from_measured(value, candidate)` the sentence fragment each formula family gets."""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

from conventions.training import MEASURED_NAME, TrainingTrace

@dataclass(frozen=True)
class MeasuredCandidate:
    name: str
    value: float  # training FLOPs over `tokens`
    per_token: Fraction
    relative_error: float  # (value - printed) / printed
    basis: str
    citation: str
    trace: TrainingTrace


def measured_candidate(spec, tokens: float, printed: float, timeout: Optional[float] = None) -> MeasuredCandidate:
    """Measure one training step of `spec` (its batch x seq_len tokens) and scale it to `tokens` training
    tokens. Raises UserError when the model cannot be traced."""
    from conventions import terms as T
    from conventions.training import MEASURED

    from .training import measure

    trace = measure(spec, timeout=timeout)
    per_token = trace.flops_per_unit
    total = float(per_token) * tokens
    used = {t: c for t, c in MEASURED.items() if trace.terms()[t]}
    return MeasuredCandidate(MEASURED_NAME, total, per_token, (total - printed) / printed,
                             f"tokens x ({T.format_combo(used)}) / {trace.units} traced tokens",
                             f"reconcile/frontends/torch_training.py: forward + backward of {spec.name} at input "
                             f"{'x'.join(map(str, trace.input_shape))}, loss = {trace.loss}", trace)


def distance_from_measured(value: float, measured: MeasuredCandidate) -> str:
    """'2.1% above the measured forward+backward' (or 'equal to ...')."""
    if value == measured.value:
        return "equal to the measured forward+backward"
    relative = (value - measured.value) / measured.value
    return f"{abs(relative):.2%} {'above' if relative > 0 else 'below'} the measured forward+backward"
