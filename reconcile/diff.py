"""The diff engine: every number a tool printed, written in the reference document's terms.

For each record (tool, layer, metric) the value is decomposed into a small integer combination of the layer's
basis terms (conventions.terms): first the catalogued convention of that tool/version/kind is checked
numerically, then, if it has none or it does not fit, a bounded search. A decomposition with a non-zero residual
is "unexplained"; two fitting combinations are "ambiguous" (a biased conv has BIAS == OUT, a 2x2/2 pool has
IN == WINDOW). Totals are explained as the sum of a tool's layer rows plus the layers it skipped.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Iterable, Optional

import pandas as pd

from conventions import catalogue
from conventions import terms as T
from conventions.formulas import layer_counts
from conventions.ir import Layer, Model

from .records import COMPUTE, MODEL_LEVEL, OK, PARAMS, TOTAL

COLUMNS = ["model", "layer", "layer_kind", "tool", "tool_version", "metric", "value", "reference", "reference_value",
           "decomposition", "explanation", "residual", "status", "source"]
# `source` of a row: the catalogued convention's citation, "catalogue" (conventions summed over several layers),
# "search" (the bounded search found it: no catalogued convention fits), "none" (nothing fits), or, for a total,
# "sum of layers" (the tool's own per-layer values add up to it).
SUM_OF_LAYERS = "sum of layers"

# Bounded search: wide enough to rediscover every catalogued convention after a tool upgrade breaks its entry (the
# catalogue uses coefficients up to 5 and up to 5 terms: ptflops' LayerNorm, TF's LayerNorm primitives).
_COEFFICIENTS = (1, 2, 3, 4, 5, -1, -2, -3, -4, -5)
_MAX_TERMS = max(5, max(len(entry.combo) for entry in catalogue.CATALOGUE))
_DOC_WEIGHTED = {T.MACC: 2, T.BIAS: 1}


@dataclass
class Decomposition:
    combo: dict[str, int]
    residual: int
    per_sample: bool = False
    origin: str = "catalogue"  # catalogue | search | none
    alternatives: list[dict[str, int]] = field(default_factory=list)
    convention: Optional[catalogue.Convention] = None
    note: str = ""  # e.g. the catalogued convention did not fit and the search found another
    silent: tuple[str, ...] = ()  # terms of the convention that are 0 on this layer: left out of the text

    @property
    def text(self) -> str:
        body = T.format_combo({t: c for t, c in self.combo.items() if t not in self.silent})
        return f"per sample: {body}" if self.per_sample else body


def _value_of(combo: dict[str, int], values: dict[str, int], batch: int, per_sample: bool) -> float:
    total = T.evaluate(combo, values)
    return total / batch if per_sample else total


def _term_set(quantity: str) -> tuple[str, ...]:
    # compute may involve WEIGHTS (TF counts variable initialisers per weight); params never involve compute terms
    return (T.PARAM_TERMS if quantity == PARAMS else T.COMPUTE_TERMS + (T.WEIGHTS,)) + T.GRAPH_TERMS


def _combos(terms: list[str], values: dict[str, int], size: int):
    """(value, combo) of every combination of exactly `size` of `terms` with non-zero coefficients."""
    for names in itertools.combinations(terms, size):
        for coefs in itertools.product(_COEFFICIENTS, repeat=size):
            yield sum(c * values[t] for t, c in zip(names, coefs)), dict(zip(names, coefs))


def _search(value: float, values: dict[str, int], batch: int, quantity: str) -> list[tuple[dict[str, int], bool]]:
    """All minimal combinations (fewest terms, then smallest coefficients) that give `value` exactly. Meet in the
    middle: combinations of up to 2 terms are indexed by value, so 5 terms cost one pass over 3-term ones."""
    if value == 0:
        return [({}, False)]
    # terms with equal values are one term for the search (BIAS == OUT on a biased layer): the alternatives say so
    candidates = []
    for t in _term_set(quantity):
        if values.get(t) and values[t] not in [values[c] for c in candidates]:
            candidates.append(t)
    order = {t: i for i, t in enumerate(candidates)}
    small: dict[int, list[dict[str, int]]] = {}
    for size in (1, 2):
        for total, combo in _combos(candidates, values, size):
            small.setdefault(total, []).append(combo)
    targets = [(value, False)] + ([(value * batch, True)] if batch > 1 else [])
    for size in range(1, _MAX_TERMS + 1):
        fits: list[tuple[int, dict[str, int], bool]] = []
        for target, per_sample in targets:
            if size <= 2:
                found = [c for c in small.get(target, []) if len(c) == size]
            else:
                found = []
                for left_value, left in _combos(candidates, values, size - 2):
                    last = max(order[t] for t in left)
                    for right in small.get(target - left_value, []):
                        if len(right) == 2 and min(order[t] for t in right) > last:
                            found.append({**left, **right})
            for combo in found:
                if all(c < 0 for c in combo.values()):
                    continue
                fits.append((sum(abs(c) for c in combo.values()) + 10 * per_sample, combo, per_sample))
        if fits:
            best = min(f[0] for f in fits)
            return [(combo, ps) for weight, combo, ps in fits if weight == best]
    return []


# Term pairs whose coincidence hides a convention: a bias on every output makes BIAS == OUT; a pool whose windows
# tile the input (2x2/2) makes IN == WINDOW. (IN == OUT on element-wise ops is a definition, not an ambiguity.)
_CONFUSABLE = {(T.BIAS, T.OUT), (T.OUT, T.BIAS), (T.IN, T.WINDOW), (T.WINDOW, T.IN)}


def _substitutions(combo: dict[str, int], values: dict[str, int]) -> list[dict[str, int]]:
    """Other combinations equal to `combo` on this layer because two terms coincide (BIAS == OUT, IN == WINDOW).
    Coefficients merge: torchstat's conv MAdd 2*MACC - OUT + BIAS is plain 2*MACC where BIAS == OUT."""
    out = []
    for term in combo:
        for other in T.COMPUTE_TERMS:
            if (term, other) in _CONFUSABLE and values.get(term) and values.get(term) == values.get(other):
                alt = dict(combo)
                alt[other] = alt.get(other, 0) + alt.pop(term)
                alt = {k: v for k, v in alt.items() if v}
                if alt not in out:
                    out.append(alt)
    return out


def expected_value(entry: catalogue.Convention, values: dict[str, int], batch: int) -> float:
    """What the catalogued convention predicts for a layer with these terms (rounded as the tool rounds)."""
    value = catalogue.round_significant(_value_of(entry.terms, values, batch, entry.per_sample),
                                        entry.significant_digits)
    return value // entry.post_divide if entry.post_divide > 1 else value


def decompose(value: float, values: dict[str, int], batch: int, entry: Optional[catalogue.Convention],
              quantity: str = COMPUTE) -> Decomposition:
    if entry is not None:
        if expected_value(entry, values, batch) == value:
            # The tool's source settles which term it counts (BIAS, not OUT, on a biased layer): not ambiguous.
            # Terms that are 0 on this layer are left out of the text (a product is MACC or ATTN, not both).
            silent = tuple(t for t in entry.terms if not values.get(t))
            return Decomposition(entry.terms, 0, entry.per_sample and batch > 1, "catalogue", [], entry,
                                 silent=silent)
    fits = _search(value, values, batch, quantity)
    if fits:
        (combo, per_sample), rest = fits[0], fits[1:]
        alternatives = [c for c, _ in rest] + _substitutions(combo, values)
        note = ""
        if entry is not None:  # a catalogue entry that stopped fitting is news (a tool or model change): say so
            note = (f"The catalogued convention ({T.format_combo(entry.terms)}, {entry.source}) gives "
                    f"{_n(_int(expected_value(entry, values, batch)))} here, not this value.")
        return Decomposition(combo, 0, per_sample, "search", alternatives, note=note)
    if entry is not None:  # the catalogued convention is the best guess; the residual says how far off it is
        return Decomposition(entry.terms, _int(value - expected_value(entry, values, batch)),
                             entry.per_sample and batch > 1, "catalogue", [], entry)
    return Decomposition({}, _int(value), False, "none")


def decompose_catalogued(value: float, values: dict[str, int], batch: int, quantity: str,
                         entries: list[catalogue.Convention]) -> Decomposition:
    """The first catalogued convention that fits exactly, else the search (noting the first entry's miss)."""
    for entry in entries:
        dec = decompose(value, values, batch, entry, quantity)
        if dec.origin == "catalogue" and not dec.residual:
            return dec
    return decompose(value, values, batch, entries[0] if entries else None, quantity)


def _int(x: float):
    return int(x) if float(x).is_integer() else x


# ---------------------------------------------------------------------------------------------------- sentences
def _n(x) -> str:
    if isinstance(x, float) and x.is_integer():
        x = int(x)
    return f"{x:,}" if isinstance(x, int) else f"{x:,.6g}"


def _weighted_phrases(combo: dict[str, int], values: dict[str, int]) -> list[str]:
    """How a conv/linear count differs from the document's 2*MACC + BIAS, in named conventions."""
    phrases = []
    macc = combo.get(T.MACC, 0)
    if macc == 1:
        phrases.append("counts a multiply-accumulate as 1 op where the document counts 2 FLOPs")
    elif macc == 2 and combo.get(T.OUT, 0) == -1:
        phrases.append("counts (2k-1) ops per output (k multiplies, k-1 adds), one fewer per output than 2 per MACC")
    elif macc == 2:
        phrases.append("counts 2 FLOPs per multiply-accumulate, as the document")
    elif macc == 0 and combo.get(T.BIAS) and len(combo) == 1:
        phrases.append("is the bias-add op alone (the multiply-accumulates are a separate op of the same layer)")
        return phrases
    elif macc == 0:
        phrases.append("does not count the multiply-accumulates at all")
    if values.get(T.BIAS):
        if combo.get(T.BIAS_CH):
            phrases.append(f"adds the bias once per channel ({_n(values[T.BIAS_CH])}) instead of once per output "
                           f"element ({_n(values[T.BIAS])})")
        elif combo.get(T.BIAS, 0) == 0 and combo.get(T.OUT, 0) <= 0:
            phrases.append(f"leaves out the {_n(values[T.BIAS])} bias adds")
        elif combo.get(T.BIAS, 0) == 1 or combo.get(T.OUT, 0) > 0:
            phrases.append("counts the bias adds")
    return phrases


def _pool_phrases(combo: dict[str, int], values: dict[str, int]) -> list[str]:
    same = values.get(T.IN) == values.get(T.WINDOW)
    tie = " (equal on this layer, so the document's example cannot tell the two readings apart)" if same else ""
    if not combo:
        return ["counts pooling as 0 where the document counts its input elements"]
    if combo == {T.IN: 1}:
        return [f"counts a pool as its input elements (the document's literal reading){tie}"]
    if combo == {T.WINDOW: 1}:
        return [f"counts a pool as kernel_area x output elements{tie}"]
    if combo == {T.WINDOW: 1, T.OUT: -1}:
        return ["counts (k-1) comparisons per output element"]
    if combo == {T.WINDOW: 1, T.OUT: 1}:
        return ["counts kernel_area adds plus 1 division per output element"]
    if combo == {T.OUT: 1}:
        return ["counts 1 op per output element"]
    return []


def describe_terms(combo: dict[str, int]) -> str:
    if not combo:
        return "0"
    return " + ".join(f"{c} x {T.TERM_MEANINGS[t]}" for t, c in combo.items()).replace("+ -", "- ")


def _join(phrases: list[str]) -> str:
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]


def _document_combo(ref: str, layer: Layer, values: dict[str, int]) -> dict[str, int]:
    if ref == "document flops":
        combo = dict(_DOC_WEIGHTED) if layer.kind in ("conv", "linear") else {T.IN: 1}
    else:
        combo = {T.MACC: 1, T.ATTN: 1}
    return {k: v for k, v in combo.items() if values.get(k)}


def _group_counts(group: list[Layer]):
    """The document's counts of a module called several times: its calls summed (params once)."""
    from conventions.formulas import Counts

    each = [layer_counts(layer) for layer in group]
    total = lambda field: None if getattr(each[0], field) is None else sum(getattr(c, field) for c in each)
    return Counts(params=each[0].params, macc=total("macc"), flops=total("flops"), note=each[0].note)


def _group_terms(group: list[Layer]) -> dict[str, int]:
    values: dict[str, int] = {}
    for index, layer in enumerate(group):
        for term, value in T.terms(layer).items():
            if index and term in T.PARAM_TERMS:
                continue  # the weights exist once however often the module runs
            values[term] = values.get(term, 0) + value
    return values


def sentence(tool: str, metric: str, value, group: list[Layer], values: dict[str, int], dec: Decomposition,
             batch: int, quantity: str) -> tuple[str, str, Optional[int]]:
    """(reference label, explanation, reference value). The explanation reads: what the number is in terms,
    how that differs from the document in named conventions, the document's own number, ambiguity, source.
    `group` is one layer, or every call of a module that runs several times (its terms summed)."""
    layer = group[0]
    counts = _group_counts(group)
    phrases: list[str] = []
    if quantity == PARAMS:
        ref, ref_value = "document params", counts.params
        if dec.combo == {T.WEIGHTS: 1} and values.get(T.BIAS_PARAMS):
            phrases.append(f"counts weights only and leaves out the {_n(values[T.BIAS_PARAMS])} bias parameters")
        elif value == 0 and ref_value:
            phrases.append("reports 0 parameters for a layer that has them")
        elif value == ref_value:
            phrases.append("counts weights plus biases, as the document")
    else:
        ref, ref_value = ("document flops", counts.flops) if counts.flops is not None else \
            (("document macc", counts.macc) if counts.macc is not None else ("none", None))
        kind = catalogue.kind_key(layer)
        if layer.kind in ("conv", "linear"):
            phrases += _weighted_phrases(dec.combo, values)
        elif layer.kind in ("pool_max", "pool_avg"):
            phrases += _pool_phrases(dec.combo, values)
        elif value == 0 and any(values.get(t) for t in T.COMPUTE_TERMS):
            products = values.get(T.MACC, 0) + values.get(T.ATTN, 0)
            missed = f", missing its {_n(products)} multiply-accumulates" if products else ""
            phrases.append(f"counts this {kind} as 0{missed}" + ("" if products else
                                                                  f" (the document has no formula for {kind})"))
        elif ref == "none":
            shown = {t: c for t, c in dec.combo.items() if t not in dec.silent}
            phrases.append(f"counts {describe_terms(shown)} (the document has no formula for {kind})")
        if value and values.get(T.ATTN) and not dec.combo.get(T.ATTN) and not dec.residual:
            phrases.append(f"leaves out the {_n(values[T.ATTN])} attention multiply-accumulates (QK^T and AV)")
        if dec.combo.get(T.ATTN_CAUSAL):
            phrases.append("counts only the attention products a causal mask keeps (the causal half)")
    if dec.per_sample and batch > 1:
        phrases.append(f"counts per sample, ignoring the batch of {batch}")
    if len(group) > 1:
        phrases.append(f"sums the {len(group)} calls of this module ({', '.join(g.name for g in group)})")
    text = f"{tool} {metric} {_n(value)} = {dec.text}."
    if phrases:
        text += f" It {_join(phrases)}."
    if dec.residual:
        text += f" UNEXPLAINED: {_n(dec.residual)} left over after {T.format_combo(dec.combo)}."
    if ref_value is not None and ref != "none" and quantity != PARAMS:
        text += f" The document: {_n(ref_value)} = {T.format_combo(_document_combo(ref, layer, values))}."
    if dec.alternatives:
        ties = sorted({f"{a} = {b} = {_n(values[a])}" for a, b in _CONFUSABLE
                       if a < b and values.get(a) and values.get(a) == values.get(b)})
        alts = "; ".join(T.format_combo(a) for a in dec.alternatives[:3])
        text += f" Ambiguous on this layer: {alts} fits too" + (f" ({', '.join(ties)})." if ties else ".")
    if dec.convention is not None and dec.origin == "catalogue" and dec.residual == 0:
        text += f" Convention: {dec.convention.says} ({dec.convention.source})."
    if dec.note:
        text += " " + dec.note
    return ref, text, ref_value


# ---------------------------------------------------------------------------------------------------- the engine
def canonical_ir(model: str, specs: Optional[dict] = None, irs: Optional[dict] = None) -> Optional[Model]:
    """The layer IR the terms are computed on: PyTorch's if the model has one, else Caffe's, else Keras'.
    Twins have identical layer names and shapes (tested), so one IR serves every tool. `irs` (model -> Model,
    None when tracing failed) are the run's own (records.attrs["irs"]); otherwise the IR comes from a job process
    (reconcile.runner.trace_ir: the model's code never runs here), cached per spec. None if it cannot be built."""
    from .errors import UserError
    from .models import cached_ir, canonical_framework, reference
    from .runner import trace_ir

    if irs is not None and model in irs:
        return irs[model]
    spec = (specs or {}).get(model)
    try:
        spec = spec or reference(model)
    except UserError:
        return None
    framework = canonical_framework(spec)
    if framework is None:
        return None
    return cached_ir(spec, framework) or trace_ir(spec, framework).model


def document_totals(model: str, specs: Optional[dict] = None, irs: Optional[dict] = None):
    """The document's Counts for a whole model (None if the model cannot be read)."""
    from conventions.formulas import model_counts

    ir = canonical_ir(model, specs, irs)
    return model_counts(ir)[-1][1] if ir is not None else None


def _row(rec, **kw) -> dict:
    base = {"model": rec.model, "layer": rec.layer, "layer_kind": rec.layer_kind, "tool": rec.tool,
            "tool_version": rec.tool_version, "metric": rec.metric, "value": rec.value, "reference": "",
            "reference_value": None, "decomposition": "", "explanation": "", "residual": None,
            "status": rec.status, "source": ""}
    base.update(kw)
    return base


# Rows the TF profiler's unfrozen graph attributes to variables, not layers (reconcile/adapters/tf_profiler.py):
# `conv1/kernel` (its initialiser ops) and the input `Variable`.
GRAPH_OBJECT_KINDS = ("initializer", "input")


def _explain_graph_object(rec, layers: dict[str, Layer], ir: Model) -> dict:
    owner = layers.get(rec.layer.split("/")[0])
    if owner is not None:
        values = T.variable_terms(weights=T.terms(owner)[T.WEIGHTS])
        what = f"initialiser of {owner.name}'s kernel ({_n(values[T.WEIGHTS])} weights)"
    else:
        values = T.variable_terms(input_elements=T.terms(ir.layers[0])[T.IN] if ir.layers else 0)
        what = f"the input held as a Variable ({_n(values[T.INPUT_VAR])} elements)"
    dec = decompose(float(rec.value), values, 1, None, rec.quantity)
    text = (f"{rec.tool} {rec.metric} {_n(rec.value)} = {dec.text}: {what}, a graph op that runs once when the "
            f"variables are initialised, not a layer's compute; the profiler counts it only before freezing.")
    if dec.residual:
        text += f" UNEXPLAINED: {_n(dec.residual)} left over."
    return _row(rec, decomposition=dec.text, explanation=text, residual=dec.residual, source=dec.origin)


def _explain_container(rec, inside: list[Layer], batch: int) -> dict:
    """A tool that reports a container module whole (ptflops' aten backend: top-level children only): its value
    is decomposed over the summed terms of the layers inside."""
    kinds = sorted({layer.kind for layer in inside})
    where = f"the {len(inside)} layers inside {rec.layer} ({', '.join(kinds)})"
    predicted = _predicted(rec, inside, batch)
    if predicted is not None and predicted[0] == rec.value:
        text = (f"{rec.tool} {rec.metric} {_n(rec.value)} = its catalogued conventions summed over {where}: "
                f"{predicted[1]}; the tool reports this container whole, not its layers.")
        return _row(rec, layer_kind="container", decomposition="sum of layers: " + predicted[1], explanation=text,
                    residual=0, source="catalogue")
    dec = decompose(float(rec.value), _sum_terms(inside), batch, None, rec.quantity)
    text = (f"{rec.tool} {rec.metric} {_n(rec.value)} = {dec.text}, summed over {where}: the tool reports this "
            f"container whole, not its layers.")
    if dec.residual:
        text += f" UNEXPLAINED: {_n(dec.residual)} left over."
    return _row(rec, layer_kind="container", decomposition=dec.text, explanation=text, residual=dec.residual,
                source=dec.origin)


def _namespace(metric: str) -> str:
    """Metric sets that live side by side: TF's `unfrozen:...` rows sum into `unfrozen:float_ops`."""
    return metric.split(":", 1)[0] if ":" in metric else ""


def total_parts(tool_rows: pd.DataFrame, total) -> pd.DataFrame:
    """The per-layer rows a tool's total sums: rows with the same metric, or, for tools whose per-layer metrics
    are op names (TF: conv1/Conv2D ... summed into float_ops), every per-layer metric of the same namespace that
    is not itself a total metric. Empty when the tool printed only the total."""
    per_layer = tool_rows[(tool_rows["layer"] != TOTAL) & (tool_rows["layer"] != MODEL_LEVEL)
                          & (tool_rows["quantity"] == total.quantity) & (tool_rows["status"] == OK)
                          & (tool_rows["tool_version"] == total.tool_version)]
    same_metric = per_layer[per_layer["metric"] == total.metric]
    if len(same_metric) or (total.quantity != COMPUTE and not _namespace(total.metric)):
        return same_metric  # (torchsummary's "Total params" is not a sum of rows named "Total params")
    total_metrics = set(tool_rows[(tool_rows["layer"] == TOTAL)
                                  & (tool_rows["tool_version"] == total.tool_version)]["metric"])
    namespace = per_layer["metric"].map(_namespace) == _namespace(total.metric)
    return per_layer[~per_layer["metric"].isin(total_metrics) & namespace]


def _sum_terms(layers: Iterable[Layer]) -> dict[str, int]:
    total: dict[str, int] = {}
    for layer in layers:
        for term, value in T.terms(layer).items():
            total[term] = total.get(term, 0) + value
    return total


def some(names: list[str], most: int = 6) -> str:
    """A list for a sentence, shortened: 'a, b, c and 12 more'."""
    return ", ".join(names) if len(names) <= most else f"{', '.join(names[:most])} and {len(names) - most} more"


def _uncovered(ir: Model, tool_rows: pd.DataFrame) -> list[Layer]:
    """IR layers a tool has no row for: not the layer itself, not its module (a later call `relu#2` is covered by
    `relu`), not a container row around it (`layer1` covers `layer1.0.conv1`)."""
    seen = set(tool_rows["layer"])
    containers = tuple(f"{c}." for c in set(tool_rows[tool_rows["layer_kind"] == "container"]["layer"]))
    return [layer for layer in ir.layers if layer.name not in seen and _base_name(layer.name) not in seen
            and not (containers and layer.name.startswith(containers))]


def _base_name(name: str) -> str:
    return name.split("#", 1)[0]


def module_calls(ir: Model) -> dict[str, list[Layer]]:
    """Modules called more than once (the IR names the later calls `relu#2`, ...): tools that hook modules
    report one row with every call summed, e.g. ResNet's shared `relu`."""
    groups: dict[str, list[Layer]] = {}
    for layer in ir.layers:
        groups.setdefault(_base_name(layer.name), []).append(layer)
    return {name: group for name, group in groups.items() if len(group) > 1}


def _skipped_reason(layer: Layer, tool: str) -> str:
    """Why a tool has no row for a layer, in terms of how the tool observes the model."""
    mechanism = catalogue.MECHANISMS.get(tool, "")
    if layer.kind == "parameter":
        ran = "used in the forward" if layer.attr("executed") else "never used by the forward"
        return f"{layer.name} (a parameter no layer owns, {ran})"
    if layer.attr("functional") and mechanism == catalogue.base.HOOKS:
        return f"{layer.name} (a functional {layer.op} call, which module hooks cannot see)"
    if layer.attr("functional") and mechanism == catalogue.base.HOOKS_AND_PATCHES:
        return f"{layer.name} (a {layer.kind} done by {layer.op} outside its patched functions and hooked modules)"
    if layer.attr("functional") and mechanism in catalogue.base.SEES_EVERY_OP:
        return f"{layer.name} (the tool sees its {layer.op} op but reports rows per module only)"
    return f"{layer.name} ({layer.kind}, {layer.op})"


def explain_model(records: pd.DataFrame, ir: Model) -> list[dict]:
    rows: list[dict] = []
    layers = {layer.name: layer for layer in ir.layers}
    calls = module_calls(ir)
    batch = ir.layers[0].batch if ir.layers else 1
    for rec in records.itertuples(index=False):
        if rec.layer == TOTAL:
            continue
        if rec.status != OK:
            text = f"{rec.tool}: {rec.message}"
            missed = layers.get(rec.layer)
            products = _group_terms(calls.get(rec.layer, [missed])) if missed is not None else {}
            if rec.status == "unsupported" and rec.quantity == COMPUTE and (products.get(T.MACC) or
                                                                            products.get(T.ATTN)):
                text += (f". SILENT ZERO: the layer's {_n(products[T.MACC] + products[T.ATTN])} multiply-accumulates "
                         f"are missed")
            rows.append(_row(rec, decomposition=rec.status, explanation=text))
            continue
        if rec.quantity not in (COMPUTE, PARAMS):  # memory figures have no basis terms
            continue
        layer = layers.get(rec.layer)
        inside = [lay for lay in ir.layers if lay.name.startswith(rec.layer + ".")] if layer is None else []
        if inside:
            rows.append(_explain_container(rec, inside, batch))
            continue
        if layer is None and rec.layer_kind in GRAPH_OBJECT_KINDS:
            rows.append(_explain_graph_object(rec, layers, ir))
            continue
        if layer is None:
            rows.append(_row(rec, decomposition="not a layer of the model", residual=rec.value,
                             explanation=f"{rec.tool} {rec.metric} {_n(rec.value)} is not attributed to a layer of "
                                         f"{ir.name}" + (f": {rec.message}" if rec.message else "")))
            continue
        group = calls.get(layer.name, [layer])
        values = _group_terms(group)
        entries = catalogue.lookup_all(rec.tool, rec.tool_version, rec.metric, layer)
        dec = decompose_catalogued(float(rec.value), values, batch, rec.quantity, entries)
        one_call = ""
        if dec.residual and len(group) > 1:
            single = decompose_catalogued(float(rec.value), T.terms(group[-1]), batch, rec.quantity, entries)
            if not single.residual:  # torchstat keeps only the last call's numbers (model_hook.py wrap_call)
                dec, values, group = single, T.terms(group[-1]), [group[-1]]
                one_call = (f" It counts only one of the {len(calls[layer.name])} calls of this module: the others "
                            f"are silently lost.")
        ref, text, ref_value = sentence(rec.tool, rec.metric, rec.value, group, values, dec, batch, rec.quantity)
        text += one_call
        rows.append(_row(rec, layer_kind=layer.kind, reference=ref, reference_value=ref_value,
                         decomposition=dec.text + (" (ambiguous)" if dec.alternatives else ""), explanation=text,
                         residual=dec.residual, source=dec.convention.source if dec.convention else dec.origin))
    rows += _explain_totals(records, ir, rows, batch)
    return rows


def _explain_totals(records: pd.DataFrame, ir: Model, layer_rows: list[dict], batch: int) -> list[dict]:
    from conventions.formulas import model_counts

    doc_total = model_counts(ir)[-1][1]
    model_values = _sum_terms(ir.layers)
    layers_by_name = {layer.name: layer for layer in ir.layers}
    tied = sum(layer.attr("shared_params", 0) for layer in ir.layers)
    # the model's parameters with every tied weight once (an LM head sharing its embedding's weight)
    param_values = {**model_values, T.WEIGHTS: model_values.get(T.WEIGHTS, 0) - tied}
    out = []
    by_tool = {tool: df for tool, df in records.groupby("tool", sort=False)}
    uncovered: dict[str, list[Layer]] = {}
    for rec in records[records["layer"] == TOTAL].itertuples(index=False):
        if rec.quantity not in (COMPUTE, PARAMS):  # memory figures have no basis terms
            continue
        if rec.status != OK:
            out.append(_row(rec, decomposition=rec.status, explanation=f"{rec.tool}: {rec.message}"))
            continue
        tool_rows = by_tool[rec.tool]
        parts = total_parts(tool_rows, rec)
        if rec.tool not in uncovered:  # once per tool, not once per total row
            uncovered[rec.tool] = _uncovered(ir, tool_rows)
        skipped = uncovered[rec.tool]
        reference = ("document params", doc_total.params) if rec.quantity == PARAMS else \
            ("document flops", doc_total.flops)
        if len(parts):
            summed = sum(v for v in parts["value"])
            residual = _int(rec.value - summed)
            kinds: dict[str, set[str]] = {}
            part_metrics, part_layers = set(parts["metric"]), set(parts["layer"])  # once, not once per row
            for row in layer_rows:
                if row["tool"] == rec.tool and row["tool_version"] == rec.tool_version and row["metric"] in \
                        part_metrics and row["layer"] in part_layers and row["layer_kind"]:
                    kinds.setdefault(row["layer_kind"], set()).add(row["decomposition"])
            decomposition = "sum of layers: " + "; ".join(f"{k}: {' | '.join(sorted(v))}" for k, v in kinds.items())
            text = f"{rec.tool} total {rec.metric} {_n(rec.value)} = the sum of its {len(parts)} per-layer values"
            source = SUM_OF_LAYERS
            if not math.isfinite(rec.value):
                text = (f"{rec.tool} total {rec.metric} {_n(rec.value)}: UNEXPLAINED, not a finite count (its "
                        f"{len(parts)} per-layer values sum to {_n(summed)})")
            elif residual:
                counted = [layers_by_name[n] for n in dict.fromkeys(parts["layer"]) if n in layers_by_name]
                residual, said, extra, source = _unattributed(rec, skipped, batch, residual, counted)
                text += said
                decomposition += extra
            graph_ops = parts[parts["layer_kind"].isin(GRAPH_OBJECT_KINDS)]
            if len(graph_ops) and rec.quantity == COMPUTE:
                text += (f", of which {_n(sum(graph_ops['value']))} are {len(graph_ops)} variable-initialiser ops "
                         f"that run once (the document's TF1 graph profiled before freezing)")
            elif len(graph_ops):
                text += (f", of which {_n(sum(graph_ops['value']))} are the input held as a trainable Variable "
                         f"(the document's TF1 graph)")
        else:
            predicted = _predicted(rec, ir.layers, batch)
            if predicted is not None and predicted[0] == rec.value and rec.value:
                residual, decomposition, source = 0, "whole model: " + predicted[1], "catalogue"
                text = (f"{rec.tool} total {rec.metric} {_n(rec.value)} = its catalogued conventions summed over the "
                        f"model's layers ({predicted[1]})")
            else:
                dec = decompose(float(rec.value), param_values if rec.quantity == PARAMS else model_values, batch,
                                None, rec.quantity)
                residual, decomposition, source = dec.residual, "whole model: " + dec.text, dec.origin
                text = f"{rec.tool} total {rec.metric} {_n(rec.value)} = {dec.text} over the whole model"
                if dec.residual or not math.isfinite(rec.value):  # nothing decomposes it: never "= 0"
                    residual, decomposition = _int(rec.value) if not math.isfinite(rec.value) else dec.residual, \
                        "whole model: none"
                    text = (f"{rec.tool} total {rec.metric} {_n(rec.value)}: UNEXPLAINED, no combination of the "
                            f"model's basis terms gives it ({_n(residual)} left over)")
            other_totals = tool_rows[(tool_rows["layer"] == TOTAL) & (tool_rows["quantity"] == COMPUTE)
                                     & (tool_rows["tool_version"] == rec.tool_version) & (tool_rows["status"] == OK)]
            products = model_values.get(T.MACC, 0) + model_values.get(T.ATTN, 0)
            if rec.value == 0 and rec.quantity == PARAMS and rec.message:
                text += f": {rec.message}"
            elif rec.value == 0 and rec.quantity == COMPUTE and products:
                text += (f": silently zero, although the model executes {_n(products)} multiply-accumulates "
                         f"({_n(2 * products)} FLOPs at 2 per multiply-accumulate), all of them missed"
                         + (f" ({rec.message})" if rec.message else ""))
            elif rec.value == 0 and any(v != 0 for v in other_totals["value"]):
                text += f": no layer of this model costs anything under {rec.tool}'s '{rec.metric}' rules"
        zero_rows = tool_rows[(tool_rows["status"] == "unsupported") & (tool_rows["quantity"] == rec.quantity)
                              & (tool_rows["tool_version"] == rec.tool_version)
                              & (tool_rows["metric"].map(_namespace) == _namespace(rec.metric))]
        if (zero_rows["metric"] == rec.metric).any():  # per-layer rows under the total's own label (two modes)
            zero_rows = zero_rows[zero_rows["metric"] == rec.metric]
        if len(zero_rows) and rec.quantity == COMPUTE:
            text += f"; it counts {some(sorted(set(zero_rows['layer'])))} as 0 (no formula, no warning in the total)"
        if skipped:
            text += "; it has no row for " + some([_skipped_reason(layer, rec.tool) for layer in skipped])
        if rec.quantity == PARAMS:
            text += f". The document's total: {_n(doc_total.params)} params"
        else:
            text += f". The document's totals: FLOPs {_n(doc_total.flops)}, MACC {_n(doc_total.macc)}"
            if doc_total.note:
                text += f" ({doc_total.note})"
        out.append(_row(rec, reference=reference[0], reference_value=reference[1], decomposition=decomposition,
                        explanation=text + ".", residual=residual, source=source))
    for tool, df in by_tool.items():
        seen = set(df["layer"])
        if MODEL_LEVEL in seen or not (seen - {TOTAL}):
            continue
        rec = df.iloc[0]
        for layer in _uncovered(ir, df):
            out.append({**_row(rec, layer=layer.name, layer_kind=layer.kind, metric="", value=None),
                        "decomposition": "no row",
                        "explanation": f"{tool} reports nothing for {_skipped_reason(layer, tool)}; "
                                       f"terms it left out: {_present_terms(layer)}",
                        "status": "missing"})
    return out


# Kinds with no arithmetic a counter could charge (a concatenation, a parameter's own row, a lookup): a tool
# without an entry for them is taken to count 0.
_UNCOUNTED_KINDS = ("concat", "parameter", "embedding")


def _predicted(rec, layers: list[Layer], batch: int) -> Optional[tuple[int, str]]:
    """(value, breakdown) the tool's catalogued conventions give for these layers, or None if a layer that has
    terms has no entry (then the catalogue cannot say what the tool does with it)."""
    total, by_kind = 0, {}
    for layer in layers:
        values = T.terms(layer)
        entries = catalogue.lookup_all(rec.tool, rec.tool_version, rec.metric, layer)
        if not entries:
            if any(values.get(t) for t in _term_set(rec.quantity)) and layer.kind not in _UNCOUNTED_KINDS:
                return None
            continue
        value = expected_value(entries[0], values, batch)
        total += value
        if value:
            key = (layer.kind, T.format_combo({t: c for t, c in entries[0].terms.items() if values.get(t)}))
            count, sub = by_kind.get(key, (0, 0))
            by_kind[key] = (count + 1, sub + value)
    text = "; ".join(f"{kind} {combo}: {_n(_int(v))} ({n} layer{'s' if n > 1 else ''})"
                     for (kind, combo), (n, v) in by_kind.items())
    return _int(total), text


def _unattributed(rec, skipped: list[Layer], batch: int, remainder, counted: list[Layer]) -> tuple:
    """A total above the sum of the tool's rows: what it counted for layers it gives no row (a dispatch-level tool
    counts a functional einsum in its total but reports modules only); or below it, when its rows count a tied
    weight in every module that holds it and its total counts it once. Returns (residual, sentence,
    decomposition suffix, source); the residual is 0 when the tool's conventions on those layers account for it,
    the source says whether the search found the remainder."""
    tied = [layer for layer in counted if layer.attr("shared_params")]
    if rec.quantity == PARAMS and tied and remainder == -sum(layer.attr("shared_params") for layer in tied):
        return 0, (f", minus the {_n(-remainder)} parameters of weights tied between layers ("
                   f"{some([layer.name for layer in tied])}), which its rows count in each layer and its total "
                   f"once"), "; minus tied weights", SUM_OF_LAYERS
    predicted = _predicted(rec, skipped, batch)
    if predicted is not None and predicted[0] == remainder:
        return 0, (f", plus {_n(remainder)} it counts in its total for layers it gives no row of their own: "
                   f"{predicted[1]}"), f"; unattributed: {predicted[1]}", "catalogue"
    dec = decompose(float(remainder), _sum_terms(skipped), batch, None, rec.quantity) if skipped else None
    if dec is not None and not dec.residual:
        return 0, (f", plus {_n(remainder)} = {dec.text} of the layers it gives no row of their own (found by "
                   f"search, no catalogued convention)"), f"; unattributed: {dec.text}", "search"
    return remainder, f", plus {_n(remainder)} it does not attribute to any layer", "", "none"


def _present_terms(layer: Layer) -> str:
    values = T.terms(layer)
    return ", ".join(f"{t} {_n(v)}" for t, v in values.items() if v and t in T.COMPUTE_TERMS) or "none"


def _delta_phrase(delta: int, layer: Optional[Layer]) -> str:
    if layer is None:
        return _n(delta)
    values = T.terms(layer)
    named = {T.BIAS: "bias adds", T.OUT: "one op per output element", T.IN: "one op per input element",
             T.MACC: "one op per multiply-accumulate"}
    for term, meaning in named.items():
        if values.get(term) and abs(delta) == values[term]:
            return f"{'+' if delta > 0 else '-'}{_n(abs(delta))} = {'+' if delta > 0 else '-'}{term} ({meaning})"
    dec = decompose(float(delta), values, layer.batch, None)
    return f"{'+' if delta > 0 else ''}{_n(delta)}" + (f" = {dec.text}" if not dec.residual else "")


def near_misses(records: pd.DataFrame, model: str, ir: Optional[Model], tolerance: float = 0.002) -> list[str]:
    """Pairs of compute totals that agree to within `tolerance` (or exactly) while their layers differ: the
    differences are named layer by layer, so an agreement by offsetting conventions is called a coincidence."""
    df = records[(records["model"] == model)]
    layers = {layer.name: layer for layer in ir.layers} if ir else {}
    totals = []
    candidates = df[(df["layer"] == TOTAL) & (df["quantity"] == COMPUTE) & (df["status"] == OK)]
    for total in candidates.itertuples(index=False):
        if not total.value:
            continue
        parts = total_parts(df[df["tool"] == total.tool], total)
        if len(parts):
            per_layer = parts.groupby("layer", sort=False)["value"].sum().to_dict()
            totals.append((total, per_layer))
    sentences = []
    for (a, layers_a), (b, layers_b) in itertools.combinations(totals, 2):
        if a.tool == b.tool:
            continue
        gap = a.value - b.value
        if abs(gap) > tolerance * max(abs(a.value), abs(b.value)):
            continue
        deltas = [(name, layers_a.get(name, 0) - layers_b.get(name, 0)) for name in
                  dict.fromkeys(list(layers_a) + list(layers_b))]
        deltas = [(name, d) for name, d in deltas if d]
        if not deltas:
            continue
        label_a, label_b = f"{a.tool} {a.metric}", f"{b.tool} {b.metric}"
        head = (f"{label_a} {_n(a.value)} and {label_b} {_n(b.value)} "
                + ("are equal only by coincidence: their layers differ and the differences cancel" if gap == 0 else
                   f"agree to {abs(gap) / max(a.value, b.value):.4%} but differ by {_n(abs(gap))}"))
        shown = deltas[:8]
        detail = "; ".join(f"{name}: {_n(layers_a.get(name, 0))} vs {_n(layers_b.get(name, 0))} "
                           f"({_delta_phrase(_int(d), layers.get(name))})" for name, d in shown)
        if len(deltas) > len(shown):
            detail += f"; and {len(deltas) - len(shown)} more layers"
        sentences.append(f"{head}. Layer by layer ({label_a} minus {label_b}): {detail}.")
    return sentences


def explain(records: pd.DataFrame, specs: Optional[dict] = None, irs: Optional[dict[str, Model]] = None) \
        -> pd.DataFrame:
    """Explain every record of a run (a DataFrame with records.COLUMNS) in the document's terms.

    `specs` (model name -> ModelSpec) gives each model's input shape; reconcile.run() stores it in
    `records.attrs["specs"]`. Without it, loaded records say it themselves (their input shape and source hash
    columns, models.specs_from_records): a model whose sources changed since is not explained (the reason is in
    `.attrs["not_explained"]`). Records without those columns are read at the models' own shapes."""
    from . import cache
    from .models import specs_from_records

    specs = specs or records.attrs.get("specs") or {}
    irs = irs if irs is not None else records.attrs.get("irs")
    known = set(specs) | set(irs or {})
    found, stale = specs_from_records(records[~records["model"].isin(known)]) if known != set(records["model"]) \
        else ({}, {})
    specs = {**found, **specs}
    rows: list[dict] = []
    for model, df in records.groupby("model", sort=False):
        if model in stale:
            continue
        ir = canonical_ir(model, specs, irs)
        if ir is None:
            continue
        rows += cache.explained(df, ir, explain_model)  # explain_model(df, ir), kept on disk (reconcile/cache.py)
    from .render import integral

    out = integral(pd.DataFrame(rows, columns=COLUMNS), ["value", "reference_value", "residual"])
    out.attrs["not_explained"] = stale
    return out
