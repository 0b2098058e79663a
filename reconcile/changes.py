"""How a change of a number is put in words, shared by the release matrix (reconcile/drift.py) and the golden
snapshots (reconcile/golden.py).

A number is read as a decomposition in basis terms on its layer (the catalogue entry of the tool's version
first, else the diff engine's search). Two readings of one (model, layer, metric) are then compared:
- the layer's terms are the same and the decomposition differs: the tool's convention changed ("conv bias adds
  no longer counted");
- the layer's terms differ (the network changed: a bias added, a stride moved) and the decomposition is the
  same: "the layer itself changed (...); same convention (1*MACC)";
- both differ: both are said.
The terms a number was read on travel with the reading (`LayerTerms`), so a golden taken on an older definition
of the network is decomposed on that definition, not on today's.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Optional

from conventions import catalogue
from conventions import terms as T
from conventions.catalogue.base import kind_key
from conventions.ir import Layer, Model

from .records import MODEL_LEVEL, OK, TOTAL, UNSUPPORTED


@dataclass(frozen=True)
class LayerTerms:
    """What a number on a layer is decomposed on: the layer's kind (catalogue key) and basis terms."""

    kind: str
    key: str  # conventions.catalogue.kind_key: the kind, adaptive pools apart
    terms: tuple[tuple[str, int], ...]
    batch: int
    # what conditional catalogue entries look at (its module class, the torch function it called, ...); empty for
    # a layer read back from a golden's layers file, where only the tool's general conventions apply
    facts: tuple[tuple[str, object], ...] = ()

    @property
    def values(self) -> dict[str, int]:
        return dict(self.terms)


_FACT_KEYS = ("api", "affine", "executed", "aten")


def layer_terms(layer: Layer) -> LayerTerms:
    values = T.terms(layer)
    facts = (("op", layer.op),) + tuple((k, v) for k, v in layer.attrs if k in _FACT_KEYS)
    return LayerTerms(layer.kind, kind_key(layer), tuple((t, int(v)) for t, v in values.items() if v), layer.batch,
                      facts)


def ir_layer_terms(ir: Optional[Model]) -> dict[str, LayerTerms]:
    return {layer.name: layer_terms(layer) for layer in ir.layers} if ir is not None else {}


@dataclass(frozen=True)
class Reading:
    """One number for one (model, layer, quantity, metric), with its decomposition in basis terms."""
    version: str
    value: object
    status: str
    message: str
    kind: str = ""
    combo: Optional[dict] = None  # None: not decomposed (a total, a non-ok row, no such layer)
    text: str = ""
    residual: object = 0
    source: str = ""
    layer: Optional[LayerTerms] = None  # the terms it was read on


def entries_for(tool: str, version: str, metric: str, layer: LayerTerms) -> list:
    return catalogue.entries(tool, version, metric, layer.key, dict(layer.facts).get if layer.facts else None)


def decompose_on(tool: str, version: str, metric: str, quantity: str, value, layer: LayerTerms):
    """The diff engine's decomposition of one number on one layer's terms, with the catalogue entry of that
    version."""
    from .diff import decompose

    entries = entries_for(tool, version, metric, layer)
    return decompose(float(value), {t: layer.values.get(t, 0) for t in T.COMPUTE_TERMS + T.PARAM_TERMS},
                     layer.batch, entries[0] if entries else None, quantity)


def reading(rec, layers: dict[str, LayerTerms]) -> Reading:
    """`rec` (a record-like row) read on its layer's terms (`layers`: layer name -> LayerTerms)."""
    layer = layers.get(rec.layer)
    base = Reading(rec.tool_version, rec.value, rec.status, rec.message, rec.layer_kind or "", layer=layer)
    if rec.status == UNSUPPORTED:
        # a layer the tool has no rule for adds 0 to its total (thop/profile.py `dfs_count`): compare it as 0
        return replace(base, value=0, kind=layer.kind if layer else base.kind, combo={}, text="no rule",
                       source="no rule")
    if rec.status != OK or layer is None or rec.layer in (TOTAL, MODEL_LEVEL):
        return base
    dec = decompose_on(rec.tool, rec.tool_version, rec.metric, rec.quantity, rec.value, layer)
    source = dec.convention.source if dec.convention is not None and not dec.residual else dec.origin
    return replace(base, kind=layer.kind, combo=dict(dec.combo), text=dec.text, residual=dec.residual,
                   source=source)


# --------------------------------------------------------------------------------------------- phrasing
# Short names for a term in a change sentence ("bias adds no longer counted").
LABELS = {T.MACC: "multiply-accumulates", T.BIAS: "bias adds", T.OUT: "output elements", T.IN: "input elements",
          T.WINDOW: "window reads", T.ATTN: "attention matmuls", T.SOFTMAX_TERM: "softmax elements",
          T.BIAS_CH: "per-channel bias adds", T.WEIGHTS: "weights", T.BIAS_PARAMS: "bias parameters"}
_ORDER = T.COMPUTE_TERMS + T.PARAM_TERMS


def term_change(old: dict, new: dict) -> dict:
    """new - old, term by term, in the terms' canonical order: {"BIAS": -1} for thop 0.0.31 -> 0.1.1 on a conv."""
    return {t: new.get(t, 0) - old.get(t, 0) for t in _ORDER if new.get(t, 0) != old.get(t, 0)}


# How a term's coefficient reads in a sentence, by term: (now counted, no longer counted, changed).
_PHRASES = {
    T.MACC: ("now counts the multiply-accumulates", "no longer counts the multiply-accumulates",
             "counts {new} ops per multiply-accumulate instead of {old}"),
    T.OUT: ("now counts {new} op(s) per output element", "no longer counts ops per output element",
            "counts {new} ops per output element instead of {old}"),
}


def _term_phrase(term: str, old: int, new: int) -> str:
    label = LABELS.get(term, term)
    now, gone, changed = _PHRASES.get(term, (f"{label} now counted" + (" x{new}" if new != 1 else ""),
                                             f"{label} no longer counted",
                                             f"{label} counted x{{new}} instead of x{{old}}"))
    if min(old, new) < 0 and 0 in (old, new):  # a term a formula subtracts (thop's old linear: 2*MACC - OUT)
        return f"{label} " + ("no longer subtracted" if new == 0 else f"now subtracted x{-new}")
    text = now if old == 0 else gone if new == 0 else changed
    return text.format(old=old, new=new)


def convention_change(kind: str, old: Optional[dict], new: Optional[dict]) -> str:
    """The change between two decompositions of one layer, in words: "conv bias adds no longer counted"."""
    if old is None or new is None:
        return "not comparable (one side has no decomposition)"
    delta = term_change(old, new)
    if not delta:
        return "same convention"
    if not new:
        return f"{kind} no longer counted (was {T.format_combo(old)})"
    if not old:
        return f"{kind} now counted ({T.format_combo(new)})"
    return f"{kind} " + " and ".join(_term_phrase(t, old.get(t, 0), new.get(t, 0)) for t in delta)


def layer_difference(old: Optional[LayerTerms], new: Optional[LayerTerms]) -> str:
    """How the layer itself changed, in its terms: "BIAS 0 -> 144, BIAS_PARAMS 0 -> 4"; "" when it did not (or
    one side is unknown)."""
    if old is None or new is None:
        return ""
    if old.kind != new.kind:
        return f"a {old.kind} layer became a {new.kind} layer"
    a, b = old.values, new.values
    changed = [t for t in _ORDER if a.get(t, 0) != b.get(t, 0)]
    if not changed:
        return "" if old.batch == new.batch else f"batch {old.batch} -> {new.batch}"
    shown = ", ".join(f"{t} {n(a.get(t, 0))} -> {n(b.get(t, 0))}" for t in changed[:4])
    return shown + (f" and {len(changed) - 4} more terms" if len(changed) > 4 else "")


def as_int(x):
    return int(x) if isinstance(x, float) and x.is_integer() else x


def n(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:,.6g}"


def signed(value) -> str:
    text = n(value)
    return text if text.startswith("-") else "+" + text


def state(r: Optional[Reading]) -> str:
    """A reading in a sentence: "299,520 (1*MACC + 1*BIAS)", or its status and reason."""
    if r is None:
        return "no row"
    if r.status == UNSUPPORTED:
        return "0 (no rule: unsupported)"
    if r.status != OK:
        return f"{r.status}" + (f" ({r.message})" if r.message else "")
    if r.combo is None:
        return n(r.value)
    extra = f", {n(r.residual)} unexplained" if r.residual else ""
    return f"{n(r.value)} ({r.text}{extra})"


def catalogued(r: Reading) -> bool:
    """Read by a catalogue entry (its source is a tool file and function), not found by the search."""
    return r.source not in ("search", "none", "no rule", "")


def comparable(r: Optional[Reading]) -> bool:
    return r is not None and r.status in (OK, UNSUPPORTED)


def layer_change(old: Optional[Reading], new: Optional[Reading]) -> tuple[object, str, str]:
    """(delta, term change text, change in words) of one layer between two readings."""
    if not comparable(old) or not comparable(new):
        was, now = (old.status if old else "no row"), (new.status if new else "no row")
        return None, "", "unchanged status" if was == now else f"{was} -> {now}"
    delta = as_int(new.value - old.value)
    if old.combo is None or new.combo is None:
        return delta, "", "unchanged" if delta == 0 else "changed"
    network = layer_difference(old.layer, new.layer)
    kind = new.kind or old.kind
    if network and not old.residual and not new.residual:
        if old.combo == new.combo:
            return delta, "", f"the layer itself changed ({network}); same convention ({T.format_combo(new.combo)})"
        if not (catalogued(old) and catalogued(new)):
            # a search's fit on a changed layer says nothing about the tool: no catalogue entry to hold it to
            return delta, "", f"the layer itself changed ({network}); no catalogued convention for this number " \
                              f"(read as {old.text} before, {new.text} now)"
        return delta, T.format_combo(term_change(old.combo, new.combo)), \
            f"the layer itself changed ({network}), and so did the convention: " \
            f"{convention_change(kind, old.combo, new.combo)}"
    if old.residual or new.residual:
        if delta == 0:
            return delta, "", "unchanged"
        if old.combo == new.combo:
            # both sit on one convention but only one fits this layer's terms: the layer changed (a golden taken
            # on another definition of the model, with no record of its terms), not what the tool counts
            return delta, "", f"the layer itself changed; same convention ({T.format_combo(new.combo)})"
        return delta, "", "changed, not fully explained by the basis terms"
    if delta == 0:
        return delta, "", "unchanged"
    return delta, T.format_combo(term_change(old.combo, new.combo)), convention_change(kind, old.combo, new.combo)


def summarise(changes: Iterable[tuple[str, object, str]]) -> str:
    """[(layer, delta, change)] -> "conv bias adds no longer counted: -11,520 on conv1, -3,200 on conv2"."""
    groups: dict[str, list[str]] = {}
    for layer, delta, change in changes:
        if delta or change not in ("unchanged", "unchanged status", "same convention"):
            where = f"{signed(delta)} on {layer}" if delta is not None else layer
            groups.setdefault(change, []).append(where)
    return "; ".join(f"{change}: {', '.join(places)}" for change, places in groups.items())


def total_change(delta, parts: list[tuple[str, object, str]]) -> str:
    """A total's change as the sum of its layers' changes, with what no layer accounts for."""
    summary = summarise(parts)
    if delta:
        explained = sum(d for _, d, _ in parts if d is not None)
        rest = as_int(delta - explained)
        if rest:
            summary += ("; " if summary else "") + f"{signed(rest)} not attributed to any layer"
    return summary
