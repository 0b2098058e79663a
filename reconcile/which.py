"""`reconcile which`: which convention (or which tool) could have produced a number printed for a model?

Two kinds of candidates are ranked against the number:
- analytic conventions, computed from the model's layer IR and its basis terms (conventions.terms): the document's
  MACC and FLOPs, 1 or 2 ops per multiply-accumulate or (2k-1) per output, conv / FC bias adds counted or not,
  the FC layers left out, BN / LayerNorm at 0, 1, 2 or 4 ops per element, max and average pools counted as 0,
  input elements, window reads, outputs or window +/- outputs, activations, residual adds and softmax counted or
  not, attention matmuls counted or not, per batch or per sample; for parameters: biases, FC layers, norm affine
  parameters and BN running statistics in or out;
- every tool's own totals, from a run of that tool on the model (cached on disk per model definition and tool
  version under .cache/runs/, or read from reports/records.csv when that run covers the model).

Ranking: exact matches first, then candidates that round to the number as printed (3.8e9 has two significant
digits: anything in [3.75e9, 3.85e9]), each of those two classes simplest convention first (fewest departures
from plain MACC / all parameters; named conventions count as simplest), then closest; then the remaining
candidates within the tolerance, closest first. A printed number rarely pins one convention: everything that
fits is listed, with its relative error and one sentence saying what it counts.
"""
from __future__ import annotations

import csv
import itertools
import os
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import pandas as pd

from conventions import terms as T
from conventions.ir import (ACT, ADD, ATTENTION, BN, CONV, LAYER_NORM, LINEAR, MATMUL, MUL, POOL_AVG, POOL_MAX,
                            SOFTMAX, Model)

from .cache import source_files, spec_fingerprint
from .errors import UserError
from .records import COMPUTE, ERROR, MODEL_LEVEL, OK, PARAMS, TOTAL

PUBLISHED_CSV = Path(__file__).resolve().parent.parent / "reference_models" / "published.csv"
RUN_CACHE_ENV = "RECONCILE_RUN_CACHE"
DEFAULT_RUN_CACHE = Path(".cache") / "runs"
DEFAULT_RECORDS = Path("reports") / "records.csv"
DEFAULT_TOLERANCE = 0.1
COLUMNS = ["rank", "tool", "metric", "convention", "family", "value", "relative_error", "match", "explanation"]

EXACT, AS_PRINTED, WITHIN, OUTSIDE = "exact", "as printed", "within tolerance", "outside tolerance"
_CLASS_ORDER = {EXACT: 0, AS_PRINTED: 1, WITHIN: 2, OUTSIDE: 3}
ANALYTIC = "analytic"


# ------------------------------------------------------------------------------------------------ printed numbers
@dataclass(frozen=True)
class Printed:
    """A number as someone printed it: its value and the half-width of its last significant digit."""

    text: str
    value: Decimal
    half_unit: Decimal  # |candidate - value| <= half_unit: the candidate rounds to the printed digits

    def __str__(self) -> str:
        return self.text


_SCALES = {"": 0, "k": 3, "K": 3, "M": 6, "G": 9, "B": 9, "T": 12}
_NUMBER = re.compile(r"(?P<mantissa>\d*\.?\d+)(?:[eE](?P<exp>[+-]?\d+))?\s*(?P<suffix>[kKMGBT]?)")


def parse_value(text: str) -> Printed:
    """'3.8e9', '3.8x10^9', '300M', '15.3G', '2,307,720' -> Printed. Trailing zeros of an integer mantissa are not
    significant ('300M' is known to the hundred million), digits after a decimal point are ('4.20M')."""
    cleaned = text.strip().replace(",", "").replace("_", "").replace(" ", "")
    cleaned = re.sub(r"[x×]10\^?", "e", cleaned)
    match = _NUMBER.fullmatch(cleaned)
    if not match:
        raise UserError(f"cannot read {text!r} as a number: expected e.g. 3.8e9, 300M, 15.3G or 2307720")
    mantissa, suffix = match["mantissa"], match["suffix"]
    exponent = int(match["exp"] or 0) + _SCALES[suffix]
    try:
        value = Decimal(mantissa).scaleb(exponent)
    except InvalidOperation:
        raise UserError(f"cannot read {text!r} as a number") from None
    if value <= 0:
        raise UserError(f"{text!r}: the number must be positive")
    if "." in mantissa:
        last_digit = -len(mantissa.split(".")[1])
    else:
        last_digit = len(mantissa) - len(mantissa.rstrip("0")) if mantissa.strip("0") else 0
    return Printed(text.strip(), value, Decimal(5).scaleb(last_digit + exponent - 1))


# ------------------------------------------------------------------------------------------------ candidates
@dataclass(frozen=True)
class Candidate:
    tool: str  # "analytic" for a convention computed from the IR, else the tool id
    metric: str  # the tool's label; for analytic candidates the quantity's name in the convention
    convention: str  # short formula (and name, for named conventions)
    value: float
    explanation: str  # what it counts, in one sentence (without the comparison to the printed number)
    complexity: int  # departures from plain MACC / all parameters; 0 for named conventions
    family: str = ""  # "1 op per MACC", "2 FLOPs per MACC", "(2k-1) per output", "parameters"
    tool_version: str = ""


@dataclass(frozen=True)
class Ranked:
    candidate: Candidate
    relative_error: float
    match: str


def _n(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,.6g}"


# ------------------------------------------------------------------------------------------------ IR totals
def group_totals(ir: Model) -> dict[str, int]:
    """The IR's basis terms summed per group of layers a convention treats alike (conv, FC, attention matmuls,
    norms, max pools, average pools, activations, residual adds, softmax) and its parameters per group."""
    g: dict[str, int] = {}

    def add(key: str, value: int) -> None:
        g[key] = g.get(key, 0) + int(value)

    for layer in ir.layers:
        t = T.terms(layer)
        kind = layer.kind
        if kind == CONV:
            add("conv_macc", t[T.MACC]), add("conv_out", t[T.OUT]), add("conv_bias", t[T.BIAS])
            add("p_conv_w", t[T.WEIGHTS]), add("p_bias", t[T.BIAS_PARAMS])
        elif kind == LINEAR:
            add("fc_macc", t[T.MACC]), add("fc_out", t[T.OUT]), add("fc_bias", t[T.BIAS])
            add("p_fc_w", t[T.WEIGHTS]), add("p_bias", t[T.BIAS_PARAMS]), add("p_fc_bias", t[T.BIAS_PARAMS])
        elif kind == ATTENTION:
            # projections are four Linear layers (q, k, v, out): FC for every convention here
            embed, batch = layer.attr("embed_dim"), layer.batch
            q_len, kv_len, heads = layer.attr("q_len"), layer.attr("kv_len"), layer.attr("num_heads")
            add("fc_macc", t[T.MACC]), add("fc_bias", t[T.BIAS]), add("fc_out", batch * embed * 2 * (q_len + kv_len))
            add("attn_mm", t[T.ATTN]), add("attn_out", batch * heads * q_len * kv_len + batch * q_len * embed)
            add("softmax", t[T.SOFTMAX_TERM]), add("attn_layers", 1)
            add("p_fc_w", t[T.WEIGHTS]), add("p_bias", t[T.BIAS_PARAMS]), add("p_fc_bias", t[T.BIAS_PARAMS])
        elif kind == MATMUL:
            add("attn_mm", t[T.MACC]), add("attn_out", t[T.OUT])
        elif kind in (BN, LAYER_NORM):
            add("norm", t[T.OUT]), add("p_norm", layer.params), add("bn_layers" if kind == BN else "ln_layers", 1)
            if "BatchNorm" in layer.op:  # running mean + variance (buffers in torch, non-trainable in Keras)
                add("p_bn_stats", layer.attr("buffers", 2 * layer.input_shape[1])), add("p_bn_layers", 1)
        elif kind in (POOL_MAX, POOL_AVG):
            prefix = "max" if kind == POOL_MAX else "avg"
            add(f"{prefix}_in", t[T.IN]), add(f"{prefix}_window", t[T.WINDOW]), add(f"{prefix}_out", t[T.OUT])
        elif kind == ACT:
            add("act", t[T.OUT])
        elif kind in (ADD, MUL):
            add("add", t[T.OUT])
        elif kind == SOFTMAX:
            add("softmax", t[T.OUT])
        else:
            add("p_other", layer.params)
    g["batch"] = ir.layers[0].batch if ir.layers else 1
    return g


# ------------------------------------------------------------------------------------------------ compute conventions
# Each dimension: the choices a counter can make, the first being the plain-MACC default.
MAC_CHOICES = ("1", "2", "2k-1")
POOL_CHOICES = {"max": ("0", "IN", "WINDOW", "OUT", "WINDOW-OUT"), "avg": ("0", "IN", "WINDOW", "OUT", "WINDOW+OUT")}
NORM_CHOICES = (0, 1, 2, 4)

_DEFAULT_COMPUTE = dict(mac="1", attn=True, fc=True, conv_bias=False, fc_bias=False, norm=0, max="0", avg="0",
                        act=False, add=False, softmax=False, per_sample=False)

# Conventions with a name (complexity 0): the document's two and what well-known tools are known to count.
NAMED_COMPUTE = (
    ("MACC (the document's macc)", {}),
    ("2 FLOPs per MACC", dict(mac="2")),
    ("document FLOPs", dict(mac="2", conv_bias=True, fc_bias=True, max="IN", avg="IN", attn=False)),
    ("MACC plus conv bias adds, FC bias not counted (thop before 0.1)", dict(conv_bias=True)),
    ("2 FLOPs per MACC plus bias adds", dict(mac="2", conv_bias=True, fc_bias=True)),
)


def _compute_dimensions(g: dict[str, int]) -> dict[str, tuple]:
    """Only dimensions the model has terms for vary: a model without BN has one BN choice (0)."""
    has = lambda *keys: any(g.get(k) for k in keys)  # noqa: E731
    dims: dict[str, tuple] = {"mac": MAC_CHOICES}
    dims["attn"] = (True, False) if has("attn_mm") else (True,)
    dims["fc"] = (True, False) if has("fc_macc") and has("conv_macc", "attn_mm") else (True,)
    dims["conv_bias"] = (False, True) if has("conv_bias") else (False,)
    dims["fc_bias"] = (False, True) if has("fc_bias") else (False,)
    dims["norm"] = NORM_CHOICES if has("norm") else (0,)
    dims["max"] = POOL_CHOICES["max"] if has("max_out") else ("0",)
    dims["avg"] = POOL_CHOICES["avg"] if has("avg_out") else ("0",)
    dims["act"] = (False, True) if has("act") else (False,)
    dims["add"] = (False, True) if has("add") else (False,)
    dims["softmax"] = (False, True) if has("softmax") else (False,)
    dims["per_sample"] = (False, True) if g.get("batch", 1) > 1 else (False,)
    return dims


def _normalise(choice: dict, dims: dict[str, tuple]) -> tuple:
    """A choice vector with every dimension the model cannot vary at its default (and the FC bias out when the
    FC layers are), so two spellings of one count compare equal."""
    full = {**_DEFAULT_COMPUTE, **choice}
    for key, options in dims.items():
        if full[key] not in options:
            full[key] = options[0]
    if not full["fc"]:
        full["fc_bias"] = False
    return tuple(sorted(full.items()))


def _pool_value(g: dict[str, int], prefix: str, choice: str) -> int:
    values = {"0": 0, "IN": g.get(f"{prefix}_in", 0), "WINDOW": g.get(f"{prefix}_window", 0),
              "OUT": g.get(f"{prefix}_out", 0)}
    if choice == "WINDOW-OUT":
        return values["WINDOW"] - values["OUT"]
    if choice == "WINDOW+OUT":
        return values["WINDOW"] + values["OUT"]
    return values[choice]


def compute_value(g: dict[str, int], c: dict) -> float:
    macc = g.get("conv_macc", 0) + (g.get("fc_macc", 0) if c["fc"] else 0) + (g.get("attn_mm", 0) if c["attn"] else 0)
    outs = g.get("conv_out", 0) + (g.get("fc_out", 0) if c["fc"] else 0) + (g.get("attn_out", 0) if c["attn"] else 0)
    value = {"1": macc, "2": 2 * macc, "2k-1": 2 * macc - outs}[c["mac"]]
    value += g.get("conv_bias", 0) * c["conv_bias"] + (g.get("fc_bias", 0) * c["fc_bias"] if c["fc"] else 0)
    value += c["norm"] * g.get("norm", 0)
    value += _pool_value(g, "max", c["max"]) + _pool_value(g, "avg", c["avg"])
    value += g.get("act", 0) * c["act"] + g.get("add", 0) * c["add"] + g.get("softmax", 0) * c["softmax"]
    return value / g.get("batch", 1) if c["per_sample"] else value


def _complexity(c: dict) -> int:
    score = {"1": 0, "2": 1, "2k-1": 2}[c["mac"]]
    score += (not c["attn"]) + (not c["fc"]) + c["conv_bias"] + c["fc_bias"] + (c["norm"] != 0)
    score += (c["max"] != "0") + (c["avg"] != "0") + c["act"] + c["add"] + c["softmax"] + c["per_sample"]
    return int(score)


_FAMILIES = {"1": "1 op per MACC", "2": "2 FLOPs per MACC", "2k-1": "(2k-1) per output"}
_POOL_WORDS = {"IN": "input elements", "WINDOW": "kernel area x outputs", "OUT": "1 op per output",
               "WINDOW-OUT": "(k-1) comparisons per output", "WINDOW+OUT": "kernel adds + 1 divide per output"}
_POOL_TERMS = {"IN": "IN", "WINDOW": "WINDOW", "OUT": "OUT", "WINDOW-OUT": "(WINDOW-OUT)",
               "WINDOW+OUT": "(WINDOW+OUT)"}


def compute_formula(c: dict, g: dict[str, int]) -> str:
    """Short formula, e.g. '2*MACC + BIAS[conv] + 4*BN + (WINDOW+OUT)[avgpool]'."""
    scope = "" if c["fc"] and c["attn"] else ("[no FC]" if not c["fc"] else "[no attn matmuls]")
    if not c["fc"] and not c["attn"] and g.get("attn_mm"):
        scope = "[no FC, no attn matmuls]"
    parts = [{"1": "MACC", "2": "2*MACC", "2k-1": "(2*MACC - OUT)"}[c["mac"]] + scope]
    conv_bias, fc_bias = c["conv_bias"] and g.get("conv_bias"), c["fc_bias"] and c["fc"] and g.get("fc_bias")
    every_bias = (conv_bias or not g.get("conv_bias")) and (fc_bias or not g.get("fc_bias") or not c["fc"])
    if conv_bias or fc_bias:
        parts.append("BIAS" if every_bias else ("BIAS[conv]" if conv_bias else "BIAS[fc]"))
    if c["norm"]:
        parts.append(f"{c['norm']}*NORM" if c["norm"] != 1 else "NORM")
    for prefix in ("max", "avg"):
        if c[prefix] != "0":
            parts.append(f"{_POOL_TERMS[c[prefix]]}[{prefix}pool]")
    parts += [term for term, on in (("OUT[act]", c["act"]), ("OUT[add]", c["add"]), ("SOFTMAX", c["softmax"]))
              if on]
    text = " + ".join(parts)
    return f"per sample: {text}" if c["per_sample"] else text


def compute_sentence(c: dict, g: dict[str, int]) -> str:
    """What the convention counts, and what it leaves out, as one sentence."""
    has_conv, has_fc = bool(g.get("conv_macc")), bool(g.get("fc_macc"))
    fc_words = "FC layers and attention projections" if g.get("attn_layers") else "FC (linear) layers"
    layers = f"conv and {fc_words}" if has_conv and has_fc else ("conv layers" if has_conv else fc_words)
    if not c["fc"]:
        layers = "conv layers only (the FC layers left out)"
    words = {"1": "1 op per multiply-accumulate", "2": "2 FLOPs per multiply-accumulate",
             "2k-1": "(2k-1) ops per output (k multiplies, k-1 adds)"}[c["mac"]]
    text = f"Counts {words} of {layers}"
    if g.get("attn_mm"):
        text += ", attention's QK^T and AV matmuls included" if c["attn"] else \
            ", without attention's QK^T and AV matmuls (which module hooks miss)"
    counted, left_out = [], []
    present = {"conv": bool(g.get("conv_bias")), "fc": bool(g.get("fc_bias")) and c["fc"]}
    chosen = {"conv": c["conv_bias"] and present["conv"], "fc": c["fc_bias"] and present["fc"]}
    if any(present.values()):
        if chosen == present:
            counted.append("bias adds")
        elif not any(chosen.values()):
            left_out.append("bias adds")
        else:
            counted.append("conv bias adds (FC bias not counted)" if chosen["conv"]
                           else "FC bias adds (conv bias not counted)")
    if g.get("norm"):
        label = _norm_label(g)
        (counted.append(f"{label} at {c['norm']} op{'s' if c['norm'] > 1 else ''} per element") if c["norm"]
         else left_out.append(label))
    for prefix, label in (("max", "max pools"), ("avg", "average pools")):
        if g.get(f"{prefix}_out"):
            choice = c[prefix]
            counted.append(f"{label} as {_POOL_WORDS[choice]}") if choice != "0" else left_out.append(label)
    for key, label in (("act", "activations"), ("add", "residual adds"), ("softmax", "softmax")):
        if g.get(key):
            counted.append(f"{label} at 1 op per element") if c[key] else left_out.append(label)
    if counted:
        text += ", plus " + _join(counted)
    if left_out:
        text += "; " + _join(left_out) + " not counted"
    if c["per_sample"]:
        text += f"; per sample (the batch of {g['batch']} divided out)"
    return text


def _norm_label(g: dict[str, int]) -> str:
    if g.get("bn_layers") and g.get("ln_layers"):
        return "BN/LayerNorm"
    return "LayerNorm" if g.get("ln_layers") else "BN"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _label(name: Optional[str], formula: str) -> str:
    """'2 FLOPs per MACC: 2*MACC'; a name that already starts with its formula ('MACC (the document's macc)')
    stands alone."""
    if not name:
        return formula
    return name if name.split(" (")[0] == formula else f"{name}: {formula}"


def compute_candidates(g: dict[str, int]) -> list[Candidate]:
    dims = _compute_dimensions(g)
    named = {}
    for name, choice in NAMED_COMPUTE:
        named.setdefault(_normalise(choice, dims), name)  # first name wins where two coincide on this model
    out = []
    keys = list(dims)
    for values in itertools.product(*(dims[k] for k in keys)):
        c = dict(zip(keys, values))
        if not c["fc"] and c["fc_bias"]:
            continue  # the same as fc_bias off
        key = _normalise(c, dims)
        name = named.get(key)
        formula = compute_formula(c, g)
        out.append(Candidate(ANALYTIC, "compute", _label(name, formula), compute_value(g, c),
                             compute_sentence(c, g), 0 if name else _complexity(c), _FAMILIES[c["mac"]]))
    return out


# ------------------------------------------------------------------------------------------------ parameter conventions
NAMED_PARAMS = (
    ("all parameters (torch's parameters(), the document's param formulas)", {}),
    ("Keras total params (with BN moving mean/variance)", dict(stats="stats")),
    ("torch state_dict size (with BN running stats and num_batches_tracked)", dict(stats="stats+count")),
)
_DEFAULT_PARAMS = dict(bias=True, fc=True, norm=True, stats="none")


def _param_dimensions(g: dict[str, int]) -> dict[str, tuple]:
    dims: dict[str, tuple] = {}
    dims["bias"] = (True, False) if g.get("p_bias") else (True,)
    dims["fc"] = (True, False) if g.get("p_fc_w") and g.get("p_conv_w") else (True,)
    dims["norm"] = (True, False) if g.get("p_norm") else (True,)
    dims["stats"] = ("none", "stats", "stats+count") if g.get("p_bn_stats") else ("none",)
    return dims


def param_value(g: dict[str, int], c: dict) -> int:
    value = g.get("p_conv_w", 0) + g.get("p_other", 0)
    value += g.get("p_bias", 0) - g.get("p_fc_bias", 0) if c["bias"] else 0
    if c["fc"]:
        value += g.get("p_fc_w", 0) + (g.get("p_fc_bias", 0) if c["bias"] else 0)
    value += g.get("p_norm", 0) if c["norm"] else 0
    if c["stats"] != "none":
        value += g.get("p_bn_stats", 0) + (g.get("p_bn_layers", 0) if c["stats"] == "stats+count" else 0)
    return value


def param_sentence(c: dict, g: dict[str, int]) -> str:
    text = "Counts the weights of conv and FC layers" if c["fc"] else "Counts the weights of conv layers only"
    counted, left_out = [], []
    if g.get("p_bias"):
        (counted if c["bias"] else left_out).append("biases")
    if g.get("p_fc_w") and g.get("p_conv_w") and not c["fc"]:
        left_out.append("the FC layers")
    if g.get("p_norm"):
        (counted if c["norm"] else left_out).append(f"{_norm_label(g)} scale and shift")
    if g.get("p_bn_stats"):
        if c["stats"] == "stats":
            counted.append("BN running mean and variance (buffers, not trained)")
        elif c["stats"] == "stats+count":
            counted.append("BN running mean, variance and num_batches_tracked (every state_dict entry)")
        else:
            left_out.append("BN running statistics")
    if counted:
        text += ", plus " + _join(counted)
    if left_out:
        text += "; " + _join(left_out) + " not counted"
    return text


def param_formula(c: dict, g: dict[str, int]) -> str:
    parts = ["WEIGHTS" + ("" if c["fc"] else "[no FC]")]
    if g.get("p_bias") and c["bias"]:
        parts.append("BIAS_PARAMS")
    if g.get("p_norm") and c["norm"]:
        parts.append("NORM_PARAMS")
    if c["stats"] != "none":
        parts.append("BN_STATS" + ("+COUNT" if c["stats"] == "stats+count" else ""))
    return " + ".join(parts)


def param_candidates(g: dict[str, int]) -> list[Candidate]:
    dims = _param_dimensions(g)
    norm = lambda c: tuple(sorted({k: (v if v in dims[k] else dims[k][0])  # noqa: E731
                                   for k, v in {**_DEFAULT_PARAMS, **c}.items()}.items()))
    named = {}
    for name, choice in NAMED_PARAMS:
        named.setdefault(norm(choice), name)
    out = []
    keys = list(dims)
    for values in itertools.product(*(dims[k] for k in keys)):
        c = dict(zip(keys, values))
        name = named.get(norm(c))
        complexity = 0 if name else int((not c["bias"]) + (not c["fc"]) + (not c["norm"]) + (c["stats"] != "none"))
        formula = param_formula(c, g)
        out.append(Candidate(ANALYTIC, "params", _label(name, formula), param_value(g, c),
                             param_sentence(c, g), complexity, "parameters"))
    return out


def analytic_candidates(ir: Model, quantity: str) -> list[Candidate]:
    g = group_totals(ir)
    return param_candidates(g) if quantity == PARAMS else compute_candidates(g)


# ------------------------------------------------------------------------------------------------ tool candidates
def tool_candidates(records: pd.DataFrame, model: str, quantity: str, analytic: Sequence[Candidate]) \
        -> list[Candidate]:
    """Every total a tool printed for the model; named after the analytic convention it equals, if any."""
    if records is None or records.empty:
        return []
    rows = records[(records["model"] == model) & (records["layer"] == TOTAL) & (records["quantity"] == quantity)
                   & (records["status"] == OK)]
    by_value: dict[float, Candidate] = {}
    for cand in sorted(analytic, key=lambda c: c.complexity):
        by_value.setdefault(float(cand.value), cand)
    out = []
    for rec in rows.itertuples(index=False):
        value = float(rec.value)
        same = by_value.get(value)
        if same is not None:
            convention, family = f"= {same.convention}", same.family
            text = f"{rec.tool} {rec.tool_version} prints {rec.metric} {_n(value)}: {same.explanation[0].lower()}" \
                   f"{same.explanation[1:]}"
            complexity = same.complexity
        else:
            convention, family, complexity = "tool's own mix (see explanations.csv)", "", 9
            text = (f"{rec.tool} {rec.tool_version} prints {rec.metric} {_n(value)}, which no single convention "
                    f"listed here reproduces (its per-layer choices are explained in explanations.csv)")
        out.append(Candidate(rec.tool, rec.metric, convention, value, text, complexity, family, rec.tool_version))
    return out


# ------------------------------------------------------------------------------------------------ ranking
def classify(value: float, printed: Printed, tolerance: float) -> tuple[str, float]:
    target = float(printed.value)
    error = (value - target) / target
    if float(value).is_integer() and Decimal(int(value)) == printed.value:
        return EXACT, error
    if abs(Decimal(repr(float(value))) - printed.value) <= printed.half_unit:
        return AS_PRINTED, error
    return (WITHIN if abs(error) <= tolerance else OUTSIDE), error


def _sort_key(item: Ranked) -> tuple:
    cls = _CLASS_ORDER[item.match]
    c = item.candidate
    analytic_first = 0 if c.tool == ANALYTIC else 1
    if cls <= 1:  # consistent with every printed digit: the simplest explanation first
        return cls, c.complexity, abs(item.relative_error), analytic_first, c.convention
    return cls, abs(item.relative_error), c.complexity, analytic_first, c.convention


def rank(candidates: Iterable[Candidate], printed: Printed, tolerance: float = DEFAULT_TOLERANCE,
         keep_closest: int = 5) -> list[Ranked]:
    """Exact and as-printed matches always; others within the tolerance; if none at all, the `keep_closest`
    nearest, marked outside tolerance."""
    ranked = []
    for cand in candidates:
        match, error = classify(cand.value, printed, tolerance)
        ranked.append(Ranked(cand, error, match))
    ranked.sort(key=_sort_key)
    kept = [r for r in ranked if r.match != OUTSIDE]
    return kept if kept else ranked[:keep_closest]


def explanation(item: Ranked, printed: Printed) -> str:
    c = item.candidate
    if item.match == EXACT:
        where = f"exactly {printed}"
    else:
        direction = "above" if item.relative_error > 0 else "below"
        where = f"{abs(item.relative_error):.2%} {direction} {printed}"
        if item.match == AS_PRINTED:
            where += ", equal to it at the precision printed"
    return f"{c.explanation}: {_n(c.value)}, {where}."


def to_frame(ranked: Sequence[Ranked], printed: Printed) -> pd.DataFrame:
    rows = [{"rank": i, "tool": (r.candidate.tool if r.candidate.tool == ANALYTIC
                                 else f"{r.candidate.tool} {r.candidate.tool_version}"),
             "metric": r.candidate.metric, "convention": r.candidate.convention, "family": r.candidate.family,
             "value": int(r.candidate.value) if float(r.candidate.value).is_integer() else r.candidate.value,
             "relative_error": round(r.relative_error, 6), "match": r.match, "explanation": explanation(r, printed)}
            for i, r in enumerate(ranked, 1)]
    return pd.DataFrame(rows, columns=COLUMNS)


# ------------------------------------------------------------------------------------------------ runs, cached
def run_cache_root(explicit: Optional[str] = None) -> Path:
    return Path(explicit or os.environ.get(RUN_CACHE_ENV) or DEFAULT_RUN_CACHE)


# the model's identity on disk is the result cache's (reconcile/cache.py): the files that define it, hashed
_source_files, fingerprint = source_files, spec_fingerprint


def read_records(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame["value"] = [(None if v == "" else (int(v) if re.fullmatch(r"-?\d+", v) else float(v)))
                      for v in frame["value"]]
    return frame


def _report_records(path: Path, spec, tools: Sequence[str], versions: dict[str, str]) -> Optional[pd.DataFrame]:
    """reports/records.csv, if it is newer than the model's sources and has every tool at its installed version."""
    if not path.is_file() or any(f.stat().st_mtime > path.stat().st_mtime for f in _source_files(spec)):
        return None
    frame = read_records(path)
    frame = frame[frame["model"] == spec.name]
    have = {(r.tool, r.tool_version) for r in frame.itertuples(index=False)}
    if not all((tool, versions[tool]) in have for tool in tools):
        return None
    return frame[frame["tool"].isin(tools)]


def _transient(records: pd.DataFrame) -> bool:
    """A job that timed out or whose process died (the runner's model-level error rows)."""
    failed = records[(records["layer"] == MODEL_LEVEL) & (records["status"] == ERROR)]
    return any("timed out" in m or "process died" in m for m in failed["message"])


def tool_records(spec, tools: Sequence[str], run: bool = True, cache_dir: Optional[str] = None,
                 report_records: Optional[Path] = DEFAULT_RECORDS, timeout: float = 120.0,
                 progress: Optional[Callable] = None) -> tuple[pd.DataFrame, list[str]]:
    """The records of `tools` on `spec`: from reports/records.csv when it covers them, else from the run cache
    (.cache/runs/<model>-<fingerprint>/<tool>-<version>.csv), running the missing tools if `run`."""
    from . import adapters
    from .api import frame, to_csv, write_atomic

    versions = {tool: adapters.get(tool).version() for tool in tools}
    notes: list[str] = []
    if report_records is not None:
        found = _report_records(Path(report_records), spec, tools, versions)
        if found is not None:
            return found, [f"tool numbers from {report_records}"]
    folder = run_cache_root(cache_dir) / f"{spec.name}-{fingerprint(spec)}"
    frames, missing = [], []
    for tool in tools:
        path = folder / f"{tool}-{versions[tool]}.csv"
        (frames.append(read_records(path)) if path.is_file() else missing.append(tool))
    if missing and run:
        from .runner import Job, run_jobs

        records = run_jobs([Job(tool, spec) for tool in missing], timeout, progress)
        for tool in missing:
            produced = frame([r for r in records if r.tool == tool])
            if _transient(produced):  # a timeout or a dead process says nothing lasting: keep it out of the cache
                frames.append(produced)
                continue
            write_atomic(folder / f"{tool}-{versions[tool]}.csv", to_csv(produced))
            frames.append(read_records(folder / f"{tool}-{versions[tool]}.csv"))
        notes.append(f"ran {', '.join(missing)}; cached in {folder}")
    elif missing:
        notes.append(f"no cached run of {', '.join(missing)} (run without --no-run to count them)")
    if len(frames) > len(missing) or not missing:
        notes.append(f"cached runs from {folder}")
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), notes


# ------------------------------------------------------------------------------------------------ the command's core
@dataclass
class Result:
    model: str
    quantity: str
    printed: Printed
    ranked: list[Ranked]
    notes: list[str] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)  # tools with no total for this quantity, and why

    def frame(self) -> pd.DataFrame:
        return to_frame(self.ranked, self.printed)


def _unavailable(records: pd.DataFrame, quantity: str) -> list[str]:
    if records is None or records.empty:
        return []
    out = []
    for tool, group in records.groupby("tool", sort=False):
        totals = group[(group["layer"] == TOTAL) & (group["quantity"] == quantity) & (group["status"] == OK)]
        if totals.empty:
            bad = group[group["status"] != OK]
            why = bad.iloc[0]["message"] if len(bad) else f"no {quantity} total"
            out.append(f"{tool}: {why}")
    return out


def which(model: str, value: str, quantity: str = COMPUTE, tolerance: float = DEFAULT_TOLERANCE,
          tools: Optional[Sequence[str]] = None, run: bool = True, batch: Optional[int] = None,
          cache_dir: Optional[str] = None, report_records: Optional[Path] = DEFAULT_RECORDS,
          progress: Optional[Callable] = None, records: Optional[pd.DataFrame] = None) -> Result:
    """Rank every candidate for `value` printed for reference model `model` (see the module docstring).
    `records`: tool records to use instead of running or reading caches (the report passes its run's)."""
    from . import adapters, models
    from .diff import canonical_ir

    if quantity not in (COMPUTE, PARAMS):
        raise UserError(f"--quantity must be compute or params, not {quantity!r}")
    if tolerance < 0:
        raise UserError(f"--tolerance must be a non-negative fraction, not {tolerance}")
    if batch is not None and batch <= 0:
        raise UserError(f"--batch must be positive, not {batch}")
    printed = parse_value(value)
    spec = models.resolve(model) if batch is None or model.endswith(".prototxt") else models.reference(model, batch)
    notes: list[str] = []
    if records is None:
        names = list(tools) if tools is not None else list(adapters.TOOLS)
        for tool in names:
            adapters.get(tool)  # unknown tool: a UserError before anything runs
        # Tools run before the IR is built: the runner forks its TensorFlow worker from this process, which must
        # not have initialised TensorFlow (a Keras-only model's IR would) or the worker hangs.
        records, notes = tool_records(spec, names, run, cache_dir,
                                      report_records if batch is None else None, progress=progress) \
            if names else (pd.DataFrame(), [])
    ir = canonical_ir(spec.name, {spec.name: spec})
    if ir is None:
        raise UserError(f"cannot read model {model!r}")
    analytic = analytic_candidates(ir, quantity)
    candidates = analytic + tool_candidates(records, spec.name, quantity, analytic)
    return Result(spec.name, quantity, printed, rank(candidates, printed, tolerance), notes,
                  _unavailable(records, quantity))


# ------------------------------------------------------------------------------------------------ published numbers
def published_numbers(path: Path = PUBLISHED_CSV) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return [row for row in csv.DictReader(handle) if row.get("model")]


def _records_for(model: str, records: Optional[pd.DataFrame], specs: Optional[dict], cache_dir: Optional[str]) \
        -> pd.DataFrame:
    """A run's records of `model` if it has any at batch 1 (papers print per-image numbers), else whatever the
    run cache holds (never runs a tool)."""
    spec = (specs or {}).get(model)
    per_image = spec is None or spec.input_shape[0] == 1
    if per_image and records is not None and not records.empty and (records["model"] == model).any():
        return records[records["model"] == model]
    from . import adapters, models

    try:
        found, _ = tool_records(models.reference(model), list(adapters.TOOLS), run=False, cache_dir=cache_dir,
                                report_records=None)
    except UserError:
        return pd.DataFrame()
    return found


def merged_explanations(result: Result, top: int) -> list[str]:
    """The `top` best distinct candidates, each analytic one followed by the tools that print exactly its value
    (the report's short form; `reconcile which` lists tools as rows of their own)."""
    analytic = [r for r in result.ranked if r.candidate.tool == ANALYTIC]
    printers: dict[float, list[str]] = {}
    for r in result.ranked:
        if r.candidate.tool != ANALYTIC:
            printers.setdefault(float(r.candidate.value), []).append(
                f"{r.candidate.tool} {r.candidate.tool_version} ({r.candidate.metric})")
    texts, seen = [], set()
    for r in analytic[:top]:
        text = explanation(r, result.printed)
        tools = printers.get(float(r.candidate.value), [])
        if tools and float(r.candidate.value) not in seen:
            text += f" Printed exactly by {', '.join(tools)}."
            seen.add(float(r.candidate.value))
        texts.append(text)
    return texts


def published_section(records: Optional[pd.DataFrame] = None, specs: Optional[dict] = None,
                      cache_dir: Optional[str] = None, top: int = 3) -> list:
    """Report blocks: every number of reference_models/published.csv ranked against the conventions and the
    tools' totals (from `records`, the current run, else cached runs; analytic conventions always)."""
    from .report import Heading, Para, Table

    rows, notes = [], []
    for pub in published_numbers():
        tool_rows = _records_for(pub["model"], records, specs, cache_dir)
        result = which(pub["model"], pub["value"], pub["quantity"], records=tool_rows)
        best = result.ranked[0] if result.ranked else None
        consistent = sum(r.match in (EXACT, AS_PRINTED) for r in result.ranked)
        rows.append({"model": pub["model"], "printed": pub["printed"], "unit as printed": pub["unit"],
                     "source": pub["citation"], "checked": pub["verified"],
                     "best match": best.candidate.convention if best else "",
                     "by": (best.candidate.tool if best and best.candidate.tool == ANALYTIC
                            else f"{best.candidate.tool} {best.candidate.tool_version}" if best else ""),
                     "value": best.candidate.value if best else None,
                     "rel. error": f"{best.relative_error:+.2%}" if best else "",
                     "match": best.match if best else "", "consistent candidates": consistent})
        lines = [f"{i}. {text}" for i, text in enumerate(merged_explanations(result, top), 1)]
        tools_note = "" if not tool_rows.empty else " (no tool run of this model in this report: analytic " \
                                                    "conventions only; `reconcile which` runs the tools)"
        notes.append(f"- **{pub['model']}, {pub['printed']} {pub['unit']}** ({pub['citation']}; it counts: "
                     f"{pub['counts']}){tools_note}: " + " ".join(lines))
    frame = pd.DataFrame(rows)
    return [Heading("Published numbers: which convention did the paper use?", 2),
            Para("Each number below, as printed in the paper (reference_models/published.csv), is ranked against "
                 "every analytic convention computed from the model's layers and every tool total of this run "
                 "(`reconcile which MODEL VALUE` prints the full ranking). 'as printed' means the candidate rounds "
                 "to the digits printed; 'consistent candidates' counts how many do, so a number that many "
                 "conventions round to says little about which one the authors used."),
            Table(frame), Para("\n".join(notes))]
