"""The reference document's formulas (docs/document.md) as pure functions of one Layer.

    param_conv = k_w*k_h*c_in/G*c_out + c_out          param_fc = n_in*n_out + n_out
    macc_conv  = k_w*k_h*c_in/G*c_out*H*W              macc_fc  = n_in*n_out
    FLOPs_conv = (2*k_w*k_h*c_in/G*c_out + c_out)*H*W  FLOPs_fc = 2*n_in*n_out + n_out
Without bias the c_out / n_out terms vanish. Conv1d/Conv3d follow by taking the product over every kernel and
output dimension. Counts cover the whole batch (the document's LeNet uses batch 1).

Pooling: the document writes FLOPs_pool1 = 20*24*24, its *input* elements. For its 2x2/2 pools that equals
kernel_area*output elements too (20*12*12*4), so the text cannot tell which it meant. We take it literally
(input elements) and every pool where the two readings differ carries a note with both numbers.

Layer kinds the document has no formula for (BN, activations, add, ...) get `macc` and `flops` of None and a
note saying so: never a 0 that would read as "costs nothing". Matmul and attention get a `macc` (the document
defines MACCs generically as dot products) but no `flops`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from . import terms as T
from .ir import (ATTENTION, CONV, EINSUM, GAP, LINEAR, MATMUL, NO_MACC_CONVENTION, PARAMETER, POOL_AVG, POOL_MAX,
                 RNN, SDPA, UNSUPPORTED_OP, Layer, Model)


@dataclass(frozen=True)
class Counts:
    params: int
    macc: Optional[int]
    flops: Optional[int]
    note: str = ""
    active_params: Optional[int] = None  # on a model's total: the parameters one token multiplies (routed experts)


_FORMULAS: dict[str, Callable[[Layer], Counts]] = {}


def document_formula(*kinds: str):
    def wrap(fn: Callable[[Layer], Counts]):
        for kind in kinds:
            _FORMULAS[kind] = fn
        return fn
    return wrap


@document_formula(CONV, LINEAR)
def weighted_layer(layer: Layer) -> Counts:
    t = T.terms(layer)
    # A module called again, or a weight tied to an earlier layer's (a language model's output head and its token
    # embedding): its parameters are counted where they first appear.
    params = t[T.WEIGHTS] + t[T.BIAS_PARAMS] - t[T.TIED]
    return Counts(params=params, macc=t[T.MACC], flops=2 * t[T.MACC] + t[T.BIAS])


@document_formula(POOL_MAX, POOL_AVG)
def pool(layer: Layer) -> Counts:
    t = T.terms(layer)
    note = ""
    if t[T.IN] != t[T.WINDOW]:
        note = (f"document pooling is ambiguous here: input elements {t[T.IN]:,} (used) vs kernel_area*output "
                f"elements {t[T.WINDOW]:,}")
    return Counts(params=layer.params, macc=None, flops=t[T.IN], note=note)


@document_formula(MATMUL, EINSUM, SDPA, ATTENTION, RNN)
def dot_products(layer: Layer) -> Counts:
    # The document defines a MACC generically ("multiply-accumulate operations, i.e. dot products"), so matmuls
    # and attention have a MACC; it gives FLOPs formulas only for conv and FC, so flops stays None.
    t = T.terms(layer)
    return Counts(params=layer.params, macc=t[T.MACC] + t[T.ATTN], flops=None,
                  note=f"no document FLOPs formula for {layer.kind}; macc = dot-product multiply-accumulates")


@document_formula(PARAMETER)
def parameter(layer: Layer) -> Counts:
    ran = ("used by the forward outside every layer" if layer.attr("executed") else
           "executed: no (never used by the forward)")
    return Counts(params=layer.params, macc=None, flops=None, note=f"a parameter no layer owns; {ran}")


@document_formula(UNSUPPORTED_OP, NO_MACC_CONVENTION)
def op_without_formula(layer: Layer) -> Counts:
    # Not a silent 0: the note says which op ran where and why its products are not counted.
    return Counts(params=layer.params, macc=None, flops=None, note=layer.attr("why", ""))


@document_formula(GAP)
def conservation_gap(layer: Layer) -> Counts:
    # Carried in the totals so they equal what the model holds and executes; the note says what is missing.
    return Counts(params=layer.params, macc=T.terms(layer)[T.MACC], flops=None, note=layer.attr("why", ""))


def no_formula(layer: Layer) -> Counts:
    return Counts(params=layer.params, macc=None, flops=None, note=f"no document formula for {layer.kind}")


def layer_counts(layer: Layer) -> Counts:
    return _FORMULAS.get(layer.kind, no_formula)(layer)


TOTAL = "__total__"


def model_counts(model: Model) -> list[tuple[Layer | None, Counts]]:
    """Per-layer document counts plus a final (None, total) entry. The total sums what has a formula and says
    how many layers had none, so a reader never mistakes a partial sum for the whole."""
    rows = [(layer, layer_counts(layer)) for layer in model.layers]
    missing = sorted({layer.kind for layer, c in rows if c.flops is None})
    notes = [f"excludes layers with no document formula: {', '.join(missing)}"] if missing else []
    params = sum(c.params for _, c in rows)
    if model.active_params is not None:
        notes.append(f"active parameters per token (mixture of experts): {model.active_params:,} of {params:,}")
    total = Counts(params=params, macc=sum(c.macc or 0 for _, c in rows), flops=sum(c.flops or 0 for _, c in rows),
                   note="; ".join(notes), active_params=model.active_params)
    return rows + [(None, total)]
