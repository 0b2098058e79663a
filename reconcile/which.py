"""`reconcile which`: which convention (or which tool) could have produced a number printed for a model?

One source of truth: every candidate is a combination of basis terms per layer kind (conventions/terms.py), summed
over the model's layer IR. The candidates come from a list of generators (CANDIDATE_GENERATORS, an extension
point: another quantity adds its own generator):
- the reference document's conventions and every tool's catalogued conventions (conventions/catalogue), evaluated
  on this model's IR;
- systematic variants of a plain count: 1 op per multiply-accumulate, 2 FLOPs per multiply-accumulate or (2k-1)
  per output; bias adds in or out; FC layers or attention matmuls left out; one further layer kind counted the
  way some catalogued tool counts it; per sample when the batch is above 1;
- every tool's own printed totals, from a run of that tool on the model (through the one cache of `run` and
  `check`, reconcile/cache.py, or read from reports/records.csv when it has this very model: same name, input
  shape and source hash; or the caller's records).

A number is read as printed ("4.1 GFLOPs", "300M MAdds", "3.8x10^9"): its last printed digit sets the match
tolerance, a unit word says whether multiply-accumulates or FLOPs were meant. Candidates sit in families by how
they count the weighted layers (1 per multiply-accumulate, 2 FLOPs per multiply-accumulate, (2k-1) per output, per
sample or not); the families are ranked (exact, then equal at the printed precision, then closest; at equal match,
the family the unit word names first, then one a tool's own total lands in), and the first one is the verdict.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import pandas as pd

from conventions import catalogue
from conventions import terms as T
from conventions.catalogue.base import kind_key
from conventions.ir import ATTENTION, BN, CONV, LAYER_NORM, LINEAR, MATMUL, Model

from .errors import UserError
from .records import COMPUTE, OK, PARAMS, TOTAL
from .validate import optional_count

DEFAULT_RECORDS = Path("reports") / "records.csv"
DEFAULT_TOLERANCE = 0.1
COLUMNS = ["family_rank", "family", "rank", "source", "tool", "metric", "convention", "value", "relative_error",
           "match", "explanation"]

EXACT, AS_PRINTED, WITHIN, OUTSIDE = "exact", "as printed", "within tolerance", "outside tolerance"
_CLASS_ORDER = {EXACT: 0, AS_PRINTED: 1, WITHIN: 2, OUTSIDE: 3}
DOCUMENT, CATALOGUE, VARIANT, TOOL = "document", "catalogue", "variant", "tool total"
ANALYTIC = (DOCUMENT, CATALOGUE, VARIANT)

# Unit words as papers print them. MAC words mean 1 per multiply-accumulate; FLOP words usually mean 2, though
# many papers print multiply-accumulates as "FLOPs" (He et al. 2015, Sec. 3.3: "FLOPs (multiply-adds)").
MACS, FLOPS, PARAMETERS = "multiply-accumulates", "FLOPs", "parameters"
_UNIT_WORDS = (
    (MACS, r"macs?|maccs?|madds?|mult-?adds?|multiply-?adds?|multiply-?accumulates?|multiply-?accumulations?"),
    (FLOPS, r"flops?"),
    (PARAMETERS, r"params?|parameters?|num_?params"),
)
_SCALE_WORDS = {"": 0, "k": 3, "K": 3, "thousand": 3, "M": 6, "m": 6, "million": 6, "mil": 6, "G": 9, "B": 9,
                "billion": 9, "bn": 9, "T": 12, "trillion": 12}


# ------------------------------------------------------------------------------------------------ printed numbers
@dataclass(frozen=True)
class Printed:
    """A number as someone printed it: its value, the half-width of its last significant digit, the unit word."""

    text: str
    value: Decimal
    half_unit: Decimal  # |candidate - value| <= half_unit: the candidate rounds to the printed digits
    unit: str = ""  # MACS, FLOPS, PARAMETERS or "" (no unit word)
    unit_text: str = ""  # the word as printed ("GFLOPs", "Mult-Adds")
    scale: int = 0  # the power of ten the number was printed at (9 for "4.1G"), for writing values alike
    decimals: int = -1  # digits printed after the decimal point (-1: none, an integer mantissa)

    def __str__(self) -> str:
        return self.text

    def show(self, value: float) -> str:
        """`value` at the printed scale with one more decimal than printed: 4,111,512,576 for "4.1G" -> "4.11 G"."""
        suffix = {3: " k", 6: " M", 9: " G", 12: " T"}.get(self.scale)
        if suffix is None:
            return _n(value) if not self.scale else f"{value:.{max(self.decimals, 0) + 1}e}"
        return f"{value / 10 ** self.scale:,.{self.decimals + 1 if self.decimals >= 0 else 0}f}{suffix}"


_NUMBER = re.compile(r"(?P<mantissa>\d*\.?\d+)(?:e(?P<exp>[+-]?\d+))?", re.I)


def _unit_of(word: str) -> tuple[str, int]:
    """'GFLOPs' -> (FLOPS, 9); 'MAdds' -> (MACS, 0); 'GMACs' -> (MACS, 9)."""
    for unit, pattern in _UNIT_WORDS:
        if re.fullmatch(pattern, word, re.I):
            return unit, 0
    prefix, rest = word[:1].lower(), word[1:]
    for unit, pattern in _UNIT_WORDS:
        if unit != PARAMETERS and prefix in "gmktb" and re.fullmatch(pattern, rest, re.I):
            return unit, {"g": 9, "m": 6, "k": 3, "t": 12, "b": 9}[prefix]
    raise UserError(f"unknown unit {word!r}: expected FLOPs, MACs, MAdds, Mult-Adds or params")


def parse_value(text: str) -> Printed:
    """'3.8e9', '3.8x10^9', '300M', '4.1 GFLOPs', '300M MAdds', '3.8 billion FLOPs', '15300 Million Mult-Adds',
    '2,307,720' -> Printed. Trailing zeros of an integer mantissa are not significant ('300M' is known to the
    hundred million), digits after a decimal point are ('4.20M')."""
    cleaned = text.strip().replace(",", "").replace("_", "")
    cleaned = re.sub(r"\s*[x×]\s*10\s*\^?\s*", "e", cleaned)
    match = _NUMBER.match(cleaned)
    if not match:
        raise UserError(f"cannot read {text!r} as a number: expected e.g. 3.8e9, 300M, 4.1 GFLOPs or 2307720")
    mantissa = match["mantissa"]
    exponent = int(match["exp"] or 0)
    words = cleaned[match.end():].split()
    glued = re.match(r"^([kKMGBT])(?![a-z])", cleaned[match.end():])  # "300M", "4.1G"
    unit, unit_text, scale = "", "", 0
    if glued:
        scale = _SCALE_WORDS[glued.group(1)]
        words = cleaned[match.end() + 1:].split()
    if words and words[0].lower() in _SCALE_WORDS and not glued:
        scale = _SCALE_WORDS[words[0].lower()]
        words = words[1:]
    if len(words) > 1:
        raise UserError(f"cannot read {text!r} as a number: expected a number, a scale and one unit word")
    if words:
        unit_text = words[0]
        unit, glued_scale = _unit_of(unit_text)
        if glued_scale and scale:
            raise UserError(f"cannot read {text!r}: two scales ({cleaned[match.end():].strip()})")
        scale = scale or glued_scale
    try:
        value = Decimal(mantissa).scaleb(exponent + scale)
    except InvalidOperation:
        raise UserError(f"cannot read {text!r} as a number") from None
    if value <= 0:
        raise UserError(f"{text!r}: the number must be positive")
    if "." in mantissa:
        decimals = len(mantissa.split(".")[1])
        last_digit = -decimals
    else:
        decimals = -1
        last_digit = len(mantissa) - len(mantissa.rstrip("0")) if mantissa.strip("0") else 0
    return Printed(text.strip(), value, Decimal(5).scaleb(last_digit + exponent + scale - 1), unit, unit_text,
                   scale or exponent, decimals)


# ------------------------------------------------------------------------------------------------ conventions on an IR
Combo = tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Counting:
    """A way to count a whole model: a combination of basis terms per layer kind (conventions.catalogue.kind_key);
    a kind it does not name counts 0."""

    per_kind: tuple[tuple[str, Combo], ...]
    per_sample: bool = False

    def combo(self, kind: str) -> dict[str, int]:
        return dict(dict(self.per_kind).get(kind, ()))


@dataclass
class ModelTerms:
    """The IR's basis terms summed per layer kind, and which weighted kinds have bias terms."""

    name: str
    by_kind: dict[str, dict[str, int]]
    batch: int
    extra_params: dict[str, int] = field(default_factory=dict)  # BN running statistics (buffers, not terms)

    @property
    def kinds(self) -> list[str]:
        return list(self.by_kind)

    def has(self, kind: str, term: str = "") -> bool:
        values = self.by_kind.get(kind)
        return bool(values) and (not term or bool(values.get(term)))

    def value(self, counting: Counting) -> float:
        total = sum(T.evaluate(counting.combo(kind), values) for kind, values in self.by_kind.items())
        return total / self.batch if counting.per_sample else total


def model_terms(ir: Model) -> ModelTerms:
    by_kind: dict[str, dict[str, int]] = {}
    stats, stat_layers = 0, 0
    for layer in ir.layers:
        sums = by_kind.setdefault(kind_key(layer), {})
        for term, value in T.terms(layer).items():
            sums[term] = sums.get(term, 0) + int(value)
        if layer.kind == BN and "BatchNorm" in layer.op:  # running mean + variance: buffers in torch, Keras' non-
            stats += int(layer.attr("buffers", 2 * layer.input_shape[1]))  # trainable weights; not basis terms
            stat_layers += 1
    batch = ir.layers[0].batch if ir.layers else 1
    return ModelTerms(ir.name, by_kind, batch, {"stats": stats, "count": stat_layers})


WEIGHTED_KINDS = (CONV, LINEAR, ATTENTION, MATMUL)
_KIND_WORDS = {CONV: "conv", LINEAR: "FC", ATTENTION: "attention", MATMUL: "matmul"}
MAC_RULES = {"1": "multiply-accumulates", "2": "2 FLOPs per multiply-accumulate",
             "2k-1": "(2k-1) ops per output (k multiplies, k-1 adds)"}
_MAC_UNIT = {"1": MACS, "2": FLOPS, "2k-1": FLOPS}
_RULE_COUNT = {"1": "multiply-accumulate count", "2": "count at 2 FLOPs per multiply-accumulate",
               "2k-1": "count at (2k-1) ops per output"}


def mac_rule(combo: dict[str, int]) -> str:
    macc, out = combo.get(T.MACC, 0), combo.get(T.OUT, 0)
    if macc == 2 and out == -1:
        return "2k-1"
    return str(macc) if macc else ""


@dataclass(frozen=True)
class Core:
    """What a counting does with the weighted layers, the part a family is named by."""

    rule: str  # "1", "2", "2k-1", "" (no multiply-accumulates at all), or another coefficient
    included: tuple[str, ...]  # weighted kinds whose multiply-accumulates it counts
    left_out: tuple[str, ...]  # weighted kinds of this model it leaves out
    bias: tuple[str, ...]  # weighted kinds whose bias adds it counts (of those the model has)
    biased: tuple[str, ...]  # weighted kinds of this model with bias adds
    attn_matmuls: Optional[bool]  # None: the model has no attention matmuls
    per_sample: bool

    @property
    def family_key(self) -> tuple[str, bool]:
        return self.rule, self.per_sample

    def name(self) -> str:
        words = MAC_RULES.get(self.rule, f"{self.rule} ops per multiply-accumulate" if self.rule else
                              "no multiply-accumulates")
        layers = "+".join(_KIND_WORDS[k] for k in self.included)
        text = f"{words} of {layers} layers" if layers else words
        if self.left_out:
            text += f" ({'+'.join(_KIND_WORDS[k] for k in self.left_out)} left out)"
        if self.attn_matmuls is False:
            text += ", without the attention matmuls"
        if self.bias:
            text += ", with bias adds" if self.bias == self.biased else \
                f", with {'+'.join(_KIND_WORDS[k] for k in self.bias)} bias adds"
        if self.per_sample:
            text += ", per sample"
        return text


def core_of(counting: Counting, mt: ModelTerms) -> Core:
    present = [k for k in WEIGHTED_KINDS if mt.has(k, T.MACC)]
    rules = {k: mac_rule(counting.combo(k)) for k in present}
    included = tuple(k for k in present if rules[k])
    left_out = tuple(k for k in present if not rules[k])
    first = next((rules[k] for k in included), "")
    biased = tuple(k for k in present if mt.has(k, T.BIAS))
    bias = tuple(k for k in biased if counting.combo(k).get(T.BIAS, 0))
    attn = None  # the model has no attention matmuls
    if mt.has(ATTENTION, T.ATTN):
        attn = bool(counting.combo(ATTENTION).get(T.ATTN, 0))
    elif mt.has(MATMUL, T.MACC):
        attn = bool(counting.combo(MATMUL).get(T.MACC, 0))
    return Core(first, included, left_out, bias, biased, attn, counting.per_sample and mt.batch > 1)


def describe(counting: Counting, mt: ModelTerms) -> str:
    """'conv: 1*MACC; linear: 1*MACC + 1*BIAS; bn: 2*IN', over the kinds this model has."""
    parts, by_combo = [], {}
    for kind in mt.kinds:
        combo = {t: c for t, c in counting.combo(kind).items() if c and (mt.by_kind[kind].get(t) or t == T.MACC)}
        if combo:
            by_combo.setdefault(T.format_combo(combo), []).append(kind)
    for text, kinds in by_combo.items():
        parts.append(f"{', '.join(kinds)}: {text}")
    text = "; ".join(parts) or "0"
    return f"per sample: {text}" if counting.per_sample and mt.batch > 1 else text


# ------------------------------------------------------------------------------------------------ candidates
@dataclass(frozen=True)
class Candidate:
    source: str  # DOCUMENT, CATALOGUE, VARIANT or TOOL
    tool: str  # the tool a catalogued convention or a printed total belongs to ("" for variants)
    metric: str
    convention: str  # the per-kind formula
    value: float
    explanation: str  # what it counts, in one sentence
    complexity: int  # departures from a plain count; 0 for the document's and the catalogue's conventions
    core: Optional[Core] = None
    tool_version: str = ""

    @property
    def family_key(self) -> tuple:
        return self.core.family_key if self.core else ("?", False)

    @property
    def label(self) -> str:
        if self.source == TOOL:
            return f"{self.tool} {self.metric}"
        if self.source in (DOCUMENT, CATALOGUE):
            return f"{self.tool} {self.metric} (catalogue{', ' + self.tool_version if self.tool_version else ''})"
        return self.convention


@dataclass(frozen=True)
class Context:
    """What a candidate generator sees."""

    ir: Model
    terms: ModelTerms
    quantity: str
    records: Optional[pd.DataFrame]
    options: dict = field(default_factory=dict)  # what a quantity's own generator needs (e.g. training tokens)


def _n(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,.6g}"


def _entry_quantity(entry: catalogue.Convention) -> str:
    return PARAMS if "param" in entry.metric.lower() else COMPUTE


def _range_label(bounds: tuple[str, str]) -> str:
    low, high = bounds
    if low and high:
        return f"releases {low} to before {high}"
    return f"releases {low} and later" if low else (f"releases before {high}" if high else "")


def catalogued_countings(quantity: str, kinds: Iterable[str]) -> list[tuple[str, str, str, Counting, str]]:
    """(tool, metric, version range words, Counting, source) for every tool metric in the catalogue, once per
    release range it distinguishes. A tool whose metrics are per op type ("*/Conv2D", the TF profiler) is one
    counting, the sum of its op types, named after the tool's total."""
    kinds = list(kinds)
    groups: dict[tuple[str, str], list[catalogue.Convention]] = {}
    for entry in catalogue.CATALOGUE:
        # entries that apply to some layers only (a module class thop has no rule for, a Tensor method calflops
        # does not patch) are exceptions to a tool's per-kind convention, not the convention itself
        if _entry_quantity(entry) != quantity or entry.when or entry.unless:
            continue
        metric = "float_ops" if entry.metric.startswith("*") else entry.metric
        groups.setdefault((entry.tool, metric), []).append(entry)
    out = []
    for (tool, metric), entries in groups.items():
        ranges = sorted({e.versions for e in entries if e.versions != ("", "")}) or [("", "")]
        for bounds in ranges:
            version = bounds[0] or "0"
            applicable = [e for e in entries if catalogue.in_range(version, e.versions)]
            per_kind: dict[str, dict[str, int]] = {}
            used: list[catalogue.Convention] = []
            for kind in kinds:
                seen_metrics, macc_counted = set(), False
                for e in applicable:
                    if kind not in e.kinds or e.metric in seen_metrics:  # first entry per metric, as the diff does
                        continue
                    seen_metrics.add(e.metric)
                    if T.MACC in e.terms:
                        if macc_counted:  # per-op metrics: Conv2D and DepthwiseConv2dNative are alternatives
                            continue
                        macc_counted = True
                    used.append(e)
                    for term, coef in e.combo:
                        per_kind.setdefault(kind, {})[term] = per_kind.get(kind, {}).get(term, 0) + coef
            per_sample = any(e.per_sample for e in applicable)
            counting = Counting(tuple((k, tuple(c.items())) for k, c in per_kind.items()), per_sample)
            sources = "; ".join(dict.fromkeys(e.source for e in used))
            out.append((tool, metric, _range_label(bounds), counting, sources))
    return out


def document_and_catalogue(ctx: Context) -> list[Candidate]:
    """The document's conventions and every catalogued tool convention, evaluated on this model."""
    out = []
    for tool, metric, versions, counting, sources in catalogued_countings(ctx.quantity, ctx.terms.kinds):
        value = ctx.terms.value(counting)
        core = core_of(counting, ctx.terms)
        if not value or (ctx.quantity == COMPUTE and not core.rule):
            continue  # a partial metric (Netscope's comparisons, divisions): no whole-model count
        source = DOCUMENT if tool == "document" else CATALOGUE
        formula = describe(counting, ctx.terms)
        words = "the reference document's" if source == DOCUMENT else f"{tool}'s catalogued"
        text = f"{words} {metric} convention{' (' + versions + ')' if versions else ''}, from {sources}"
        out.append(Candidate(source, tool, metric, formula, value, text, 0, core, versions))
    return out


def _extra_treatments(mt: ModelTerms) -> dict[str, list[dict[str, int]]]:
    """Per kind that is not weighted, the distinct ways the catalogue counts it (the document's first)."""
    out: dict[str, list[dict[str, int]]] = {}
    for entry in sorted(catalogue.CATALOGUE, key=lambda e: e.tool != "document"):
        if _entry_quantity(entry) != COMPUTE:
            continue
        for kind in entry.kinds:
            if kind in WEIGHTED_KINDS or kind not in mt.by_kind:
                continue
            combo = {t: c for t, c in entry.combo if mt.by_kind[kind].get(t)}
            if combo and combo not in out.setdefault(kind, []):
                out[kind].append(combo)
    return out


def _weighted(rule: str, kind: str, bias: bool, attn: bool) -> dict[str, int]:
    combo = {"1": {T.MACC: 1}, "2": {T.MACC: 2}, "2k-1": {T.MACC: 2, T.OUT: -1}}[rule].copy()
    if kind == ATTENTION:
        combo.pop(T.OUT, None)  # (2k-1) per output is not defined for a fused attention layer: 2 per MACC there
        if attn:
            combo[T.ATTN] = 2 if rule != "1" else 1
    if kind == MATMUL and not attn:
        return {}
    if bias:
        combo[T.BIAS] = 1
    return combo


def systematic_variants(ctx: Context) -> list[Candidate]:
    """Plain counts of the weighted layers and their departures: bias adds, FC or attention matmuls left out,
    one more layer kind counted as some catalogued tool counts it, per sample."""
    if ctx.quantity != COMPUTE:
        return []
    mt = ctx.terms
    present = [k for k in WEIGHTED_KINDS if mt.has(k, T.MACC)]
    if not present:
        return []
    biased = [k for k in (CONV, LINEAR, ATTENTION) if mt.has(k, T.BIAS)]
    bias_options = [()] + ([tuple(biased)] if biased else []) + ([(CONV,)] if CONV in biased and len(biased) > 1
                                                                 else [])
    scopes = [tuple(present)]
    if CONV in present and LINEAR in present:
        scopes.append(tuple(k for k in present if k != LINEAR))
    has_attn = mt.has(ATTENTION, T.ATTN) or MATMUL in present
    attn_options = (True, False) if has_attn else (True,)
    extras = [(None, None)] + [(k, c) for k, combos in _extra_treatments(mt).items() for c in combos]
    per_sample_options = (False, True) if mt.batch > 1 else (False,)
    out = []
    for rule in MAC_RULES:
        for scope in scopes:
            for bias in bias_options:
                for attn in attn_options:
                    for extra_kind, extra in extras:
                        for per_sample in per_sample_options:
                            per_kind = {k: _weighted(rule, k, k in bias, attn) for k in scope}
                            if extra_kind:
                                per_kind[extra_kind] = extra
                            counting = Counting(tuple((k, tuple(c.items())) for k, c in per_kind.items() if c),
                                                per_sample)
                            complexity = (scope != scopes[0]) + bool(bias) + (not attn) \
                                + (extra_kind is not None) + per_sample
                            core = core_of(counting, mt)
                            formula = describe(counting, mt)
                            text = core.name()[0].upper() + core.name()[1:]
                            if extra_kind:
                                text += f", plus {extra_kind} as {T.format_combo(extra)}"
                            if per_sample:
                                text += f" (the batch of {mt.batch} divided out)"
                            out.append(Candidate(VARIANT, "", COMPUTE, formula, mt.value(counting), text, complexity,
                                                 core))
    return out


def parameter_variants(ctx: Context) -> list[Candidate]:
    """All parameters (weights and biases of every layer) and its departures: biases, FC layers or norm scale and
    shift left out; BN running statistics (buffers) counted, as Keras' total and a state_dict do."""
    if ctx.quantity != PARAMS:
        return []
    mt = ctx.terms
    norms = [k for k in (BN, LAYER_NORM) if mt.has(k, T.WEIGHTS)]
    stats = mt.extra_params.get("stats", 0)
    out = []
    for bias in (True, False) if any(mt.has(k, T.BIAS_PARAMS) for k in mt.kinds) else (True,):
        for fc in (True, False) if mt.has(LINEAR, T.WEIGHTS) and mt.has(CONV, T.WEIGHTS) else (True,):
            for norm in (True, False) if norms else (True,):
                for stat in ("", "stats", "stats+count") if stats else ("",):
                    per_kind = {}
                    for kind in mt.kinds:
                        if (kind == LINEAR and not fc) or (kind in norms and not norm):
                            continue
                        keep_bias = bias or kind in norms
                        per_kind[kind] = ((T.WEIGHTS, 1),) + (((T.BIAS_PARAMS, 1),) if keep_bias else ())
                    counting = Counting(tuple(per_kind.items()))
                    value = mt.value(counting)
                    parts, left = ["weights"], []
                    (parts if bias else left).append("biases")
                    if mt.has(LINEAR, T.WEIGHTS) and mt.has(CONV, T.WEIGHTS) and not fc:
                        left.append("the FC layers")
                    if norms:
                        (parts if norm else left).append("norm scale and shift")
                    formula = "WEIGHTS + BIAS_PARAMS" if bias else "WEIGHTS"
                    if stat:
                        value += stats + (mt.extra_params["count"] if stat == "stats+count" else 0)
                        parts.append("BN running mean and variance" + (" and num_batches_tracked"
                                                                        if stat == "stats+count" else ""))
                        formula += " + BN_STATS" + ("+COUNT" if stat == "stats+count" else "")
                    name = {"": "all parameters", "stats": "Keras total params (with BN moving mean/variance)",
                            "stats+count": "torch state_dict size"}[stat]
                    text = "Counts " + ", ".join(parts) + ("; " + ", ".join(left) + " not counted" if left else "")
                    complexity = (not bias) + (not fc) + (not norm) + (0 if stat and bias and fc and norm else
                                                                        bool(stat))
                    core = Core("", (), (), (), (), None, False)
                    out.append(Candidate(VARIANT, "", PARAMS, f"{name}: {formula}" + ("" if fc else " [no FC]")
                                         + ("" if norm else " [no norm]"), value, text, complexity, core))
    return out


def tool_totals(ctx: Context) -> list[Candidate]:
    """Every total a tool printed for the model, in the family its catalogued convention falls in."""
    records = ctx.records
    if records is None or records.empty:
        return []
    rows = records[(records["model"] == ctx.ir.name) & (records["layer"] == TOTAL)
                   & (records["quantity"] == ctx.quantity) & (records["status"] == OK)]
    countings = catalogued_countings(ctx.quantity, ctx.terms.kinds)
    out = []
    for rec in rows.itertuples(index=False):
        value = float(rec.value)
        mine = [c for c in countings if c[0] == rec.tool and (c[1] == rec.metric or (c[1] == "float_ops"))]
        mine = [c for c in mine if not c[2] or catalogue.in_range(rec.tool_version, _bounds(c[2]))] or mine
        if mine and ctx.quantity == COMPUTE:
            _, _, _, counting, sources = mine[0]
            core = core_of(counting, ctx.terms)
            expected = ctx.terms.value(counting)
            same = "equal to" if expected == value else f"{(value - expected) / expected:+.2%} from" \
                if expected else "against"
            text = (f"{rec.tool} {rec.tool_version} prints {rec.metric} {_n(value)}; its catalogued convention "
                    f"({describe(counting, ctx.terms)}) gives {_n(expected)} on this model's layers, {same} it")
            convention = describe(counting, ctx.terms)
        else:
            core = core_of(Counting(()), ctx.terms) if ctx.quantity == COMPUTE else Core("", (), (), (), (), None,
                                                                                         False)
            text = f"{rec.tool} {rec.tool_version} prints {rec.metric} {_n(value)}"
            convention = "the tool's own total" if ctx.quantity == COMPUTE else "parameters"
        out.append(Candidate(TOOL, rec.tool, rec.metric, convention, value, text, 0, core, rec.tool_version))
    return out


def _bounds(words: str) -> tuple[str, str]:
    m = re.fullmatch(r"releases (\S+) to before (\S+)", words)
    if m:
        return m.group(1), m.group(2)
    m = re.fullmatch(r"releases (\S+) and later", words)
    if m:
        return m.group(1), ""
    m = re.fullmatch(r"releases before (\S+)", words)
    return ("", m.group(1)) if m else ("", "")


# The extension point: a generator takes a Context and returns candidates. Another quantity (e.g. a training
# compute) appends its name to QUANTITIES and its generator here, reading what it needs from Context.options.
Generator = Callable[[Context], list[Candidate]]
CANDIDATE_GENERATORS: list[Generator] = [document_and_catalogue, systematic_variants, parameter_variants,
                                         tool_totals]
QUANTITIES = [COMPUTE, PARAMS]


def candidates(ctx: Context) -> list[Candidate]:
    """Every generator's candidates, once each: a variant with the same formula on this model as a catalogued
    convention is dropped in favour of the named one (a different formula of equal value is kept: that is an
    ambiguity the reader must see)."""
    out, named = [], set()
    for generator in CANDIDATE_GENERATORS:
        for cand in generator(ctx):
            if cand.source == VARIANT and cand.convention in named:
                continue
            if cand.source in (DOCUMENT, CATALOGUE):
                named.add(cand.convention)
            out.append(cand)
    seen, unique = set(), []
    for cand in out:
        key = (cand.source, cand.tool, cand.metric, cand.tool_version, cand.convention, cand.value)
        if key not in seen:
            seen.add(key)
            unique.append(cand)
    return unique


# ------------------------------------------------------------------------------------------------ ranking
@dataclass(frozen=True)
class Ranked:
    candidate: Candidate
    relative_error: float
    match: str


@dataclass
class Family:
    key: tuple
    name: str
    members: list[Ranked]
    unit_agrees: Optional[bool]  # None: no unit word, or a parameter count

    @property
    def best(self) -> Ranked:
        return self.members[0]

    @property
    def tools(self) -> list[Ranked]:
        return [r for r in self.members if r.candidate.source == TOOL]


def classify(value: float, printed: Printed, tolerance: float) -> tuple[str, float]:
    target = float(printed.value)
    error = (value - target) / target
    if float(value).is_integer() and Decimal(int(value)) == printed.value:
        return EXACT, error
    if abs(Decimal(repr(float(value))) - printed.value) <= printed.half_unit:
        return AS_PRINTED, error
    return (WITHIN if abs(error) <= tolerance else OUTSIDE), error


def _unit_matches(metric: str, printed: Printed) -> bool:
    """A tool's own label says the unit the paper printed ("flops" for "GFLOPs", "macs" for "MAdds")."""
    if not printed.unit:
        return False
    for unit, pattern in _UNIT_WORDS:
        if unit == printed.unit and re.search(pattern, metric, re.I):
            return True
    return False


def _member_key(r: Ranked, printed: Printed) -> tuple:
    c = r.candidate
    cls = _CLASS_ORDER[r.match]
    tool_first = 0 if c.source == TOOL else 1  # a tool's own total above an analytic one of equal match
    if cls <= 1:
        return cls, tool_first, not _unit_matches(c.metric, printed), c.complexity, abs(r.relative_error), c.label
    return cls, abs(r.relative_error), tool_first, c.complexity, c.label


def quantity_of(r: Ranked) -> str:
    return PARAMS if r.candidate.metric == PARAMS or "param" in r.candidate.metric.lower() else COMPUTE


def families(ranked: Sequence[Ranked], printed: Printed) -> list[Family]:
    groups: dict[tuple, list[Ranked]] = {}
    for r in ranked:
        groups.setdefault(r.candidate.family_key, []).append(r)
    out = []
    for key, members in groups.items():
        members = sorted(members, key=lambda r: _member_key(r, printed))
        rule = key[0]
        agrees = None if not printed.unit or printed.unit == PARAMETERS or rule not in _MAC_UNIT else \
            _MAC_UNIT[rule] == printed.unit
        # named by its plainest analytic member of the best match class (nothing left out, no bias adds)
        best_class = _CLASS_ORDER[members[0].match]
        analytic = sorted((m for m in members if m.candidate.source != TOOL and m.candidate.core
                           and _CLASS_ORDER[m.match] == best_class),
                          key=lambda m: (bool(m.candidate.core.left_out), bool(m.candidate.core.bias),
                                         m.candidate.complexity, abs(m.relative_error)))
        top = analytic[0] if analytic else members[0]
        if any(quantity_of(m) == PARAMS for m in members):
            name = "parameters"
        elif rule:
            name = top.candidate.core.name()
        else:
            name = "a tool's own count (no catalogued convention covers its multiply-accumulates)"
        out.append(Family(key, name, members, agrees))

    def family_key(f: Family) -> tuple:
        best = f.best
        cls = _CLASS_ORDER[best.match]
        in_class = [m for m in f.members if _CLASS_ORDER[m.match] == cls]
        has_tool = any(m.candidate.source == TOOL for m in in_class)
        unit = 0 if f.unit_agrees is not False else 1
        closest = min(abs(m.relative_error) for m in in_class)
        return cls, unit, not has_tool, closest, f.name
    return sorted(out, key=family_key)


def rank(cands: Iterable[Candidate], printed: Printed, tolerance: float = DEFAULT_TOLERANCE,
         keep_closest: int = 5) -> list[Ranked]:
    """Exact and as-printed matches always; others within the tolerance; if none at all, the `keep_closest`
    nearest, marked outside tolerance. Sorted by family, then member."""
    ranked = []
    for cand in cands:
        match, error = classify(cand.value, printed, tolerance)
        ranked.append(Ranked(cand, error, match))
    kept = [r for r in ranked if r.match != OUTSIDE]
    if not kept:
        kept = sorted(ranked, key=lambda r: (abs(r.relative_error), r.candidate.complexity))[:keep_closest]
    # every family is listed: one with nothing within the tolerance by its closest member (a paper's number
    # that fits one family is also a statement that it does not fit the others)
    present = {r.candidate.family_key for r in kept}
    for key in dict.fromkeys(r.candidate.family_key for r in ranked):
        if key not in present and key[0] in MAC_RULES:
            # represented by its plainest member: a plain count before a tool's mix of rules
            kept.append(min((r for r in ranked if r.candidate.family_key == key),
                            key=lambda r: (r.candidate.complexity, r.candidate.source != VARIANT,
                                           abs(r.relative_error))))
    return [m for f in families(kept, printed) for m in f.members]


def where(r: Ranked, printed: Printed) -> str:
    if r.match == EXACT:
        return f"exactly {printed}"
    direction = "above" if r.relative_error > 0 else "below"
    text = f"{abs(r.relative_error):.2%} {direction} {printed}"
    return text + (", equal to it at the precision printed" if r.match == AS_PRINTED else "")


def explanation(r: Ranked, printed: Printed) -> str:
    return f"{r.candidate.explanation}: {_n(r.candidate.value)}, {where(r, printed)}."


# ------------------------------------------------------------------------------------------------ runs, cached
def read_records(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame["value"] = [(None if v == "" else (int(v) if re.fullmatch(r"-?\d+", v) else float(v)))
                      for v in frame["value"]]
    return frame


def _report_records(path: Path, spec, tools: Sequence[str], versions: dict[str, str]) -> Optional[pd.DataFrame]:
    """A run's records.csv rows of this very model (same name, input shape and source hash: records.py), if it
    has every tool at its installed version; None otherwise (also for a file that does not read as records)."""
    from .identity import identify
    from .records import IDENTITY_COLUMNS

    if not path.is_file():
        return None
    try:
        frame = read_records(path)
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError, KeyError):
        return None
    if not set(IDENTITY_COLUMNS) <= set(frame.columns):
        return None  # written before the columns existed: which model exactly is unknown
    ident = identify(spec)
    frame = frame[(frame["model"] == spec.name) & (frame["input_shape"] == "x".join(map(str, spec.input_shape)))
                  & (frame["source_hash"] == ident.source_hash)]
    have = {(r.tool, r.tool_version) for r in frame.itertuples(index=False)}
    if not all((tool, versions[tool]) in have for tool in tools):
        return None
    return frame[frame["tool"].isin(tools)]


def tool_records(spec, tools: Sequence[str], run: bool = True, cache_dir: Optional[str] = None,
                 report_records: Optional[Path] = DEFAULT_RECORDS, timeout: float = 120.0,
                 progress: Optional[Callable] = None) -> tuple[pd.DataFrame, list[str]]:
    """The records of `tools` on `spec`: from a run's records.csv when it has them for this very model, else from
    the cache `run` and `check` use (reconcile/cache.py; `cache_dir`: another cache folder), running the missing
    tools if `run` (and keeping their records there)."""
    from . import adapters, cache
    from .api import frame, run_cached
    from .runner import Job

    versions = {tool: adapters.get(tool).version() for tool in tools}
    notes: list[str] = []
    if report_records is not None:
        found = _report_records(Path(report_records), spec, tools, versions)
        if found is not None:
            return found, [f"tool numbers from {report_records}"]
    root = Path(cache_dir) if cache_dir else None
    where = root or cache.cache_root()
    jobs = [Job(tool, spec) for tool in tools]
    hits = {job.tool: cache.load(job, root) for job in jobs}
    missing = [tool for tool, records in hits.items() if records is None]
    if missing and run:
        records = run_cached(jobs, timeout, progress, root=root)
        notes.append(f"ran {', '.join(missing)}; cached in {where}")
    else:
        records = [record for tool in tools for record in hits[tool] or []]
        if missing:
            notes.append(f"no cached run of {', '.join(missing)} (run without --no-run to count them)")
    if len(missing) < len(tools):
        notes.append(f"cached runs from {where}")
    return frame(records), notes


# ------------------------------------------------------------------------------------------------ the command's core
@dataclass
class Result:
    model: str
    quantity: str
    printed: Printed
    families: list[Family]
    notes: list[str] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)  # tools with no total for this quantity, and why

    @property
    def ranked(self) -> list[Ranked]:
        return [m for f in self.families for m in f.members]

    def tool_matches(self) -> list[Ranked]:
        """Tool totals equal to the number at the printed precision: the verdict family's first, then by unit
        label and closeness."""
        hits = [(i, r) for i, f in enumerate(self.families) for r in f.tools if r.match in (EXACT, AS_PRINTED)]
        hits.sort(key=lambda ir: (ir[0], not _unit_matches(ir[1].candidate.metric, self.printed),
                                  abs(ir[1].relative_error)))
        return [r for _, r in hits]

    def verdict(self) -> str:
        """One line: the family, how close, and the tools whose own printed metric lands there."""
        if not self.families:
            return f"{self.model} {self.printed}: no candidate"
        top = self.families[0]
        best = top.best
        value = self.printed.show(best.candidate.value)
        if best.match in (EXACT, AS_PRINTED):
            head = f"{self.model} {self.printed}: {top.name} ({value}" + \
                (", exact)" if best.match == EXACT else ", equal at the printed precision)")
        else:
            head = (f"{self.model} {self.printed}: nothing matches at the printed precision; nearest: {top.name} "
                    f"({value}, {best.relative_error:+.2%})")
        tools = self.tool_matches()
        if tools:
            head += "; printed by " + ", ".join(f"{r.candidate.tool} {r.candidate.metric} "
                                                f"{self.printed.show(r.candidate.value)}" for r in tools)
        elif best.match in (EXACT, AS_PRINTED):
            head += "; no tool total here lands there"
        return head

    def unit_note(self) -> str:
        p = self.printed
        if self.quantity == PARAMS:
            return ""
        if not p.unit:
            return "no unit printed: every family ranked by closeness alone"
        if p.unit == PARAMETERS:
            return f"unit {p.unit_text!r} names parameters: use --quantity params"
        top = self.families[0] if self.families else None
        favoured = "1 per multiply-accumulate" if p.unit == MACS else "2 FLOPs per multiply-accumulate or (2k-1) " \
                                                                      "per output"
        text = f"unit {p.unit_text!r} read as {p.unit}: at equal match, families counting {favoured} rank first"
        if top is not None and top.unit_agrees is False:
            text += (f"; none of those matches as well, so the verdict is a {_RULE_COUNT.get(top.key[0], top.name)} "
                     f"printed as {p.unit_text}" + (" (papers often print multiply-accumulates as 'FLOPs')"
                                                     if p.unit == FLOPS else ""))
        return text

    def frame(self) -> pd.DataFrame:
        return to_frame(self)


def to_frame(result: Result) -> pd.DataFrame:
    rows, rank_ = [], 0
    for i, fam in enumerate(result.families, 1):
        for r in fam.members:
            rank_ += 1
            c = r.candidate
            rows.append({"family_rank": i, "family": fam.name, "rank": rank_, "source": c.source,
                         "tool": f"{c.tool} {c.tool_version}".strip(), "metric": c.metric,
                         "convention": c.convention,
                         "value": int(c.value) if float(c.value).is_integer() else c.value,
                         "relative_error": round(r.relative_error, 6), "match": r.match,
                         "explanation": explanation(r, result.printed)})
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame.attrs["verdict"] = result.verdict()
    frame.attrs["unit_note"] = result.unit_note()
    return frame


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


def explain_number(ir: Model, printed: Printed, quantity: str = COMPUTE, tolerance: float = DEFAULT_TOLERANCE,
                   records: Optional[pd.DataFrame] = None, options: Optional[dict] = None) -> Result:
    """Rank every candidate for `printed` on a layer IR and `records` (a run's records; None: analytic only).
    `options` reach the generators (Context.options)."""
    ctx = Context(ir, model_terms(ir), quantity, records, dict(options or {}))
    return Result(ir.name, quantity, printed, families(rank(candidates(ctx), printed, tolerance), printed),
                  [], _unavailable(records, quantity))


def which(model: str, value: str, quantity: str = COMPUTE, tolerance: float = DEFAULT_TOLERANCE,
          tools: Optional[Sequence[str]] = None, run: bool = True, batch: Optional[int] = None,
          cache_dir: Optional[str] = None, report_records: Optional[Path] = DEFAULT_RECORDS,
          progress: Optional[Callable] = None, records: Optional[pd.DataFrame] = None,
          model_file: Optional[str] = None, input_shape: Optional[str] = None,
          options: Optional[dict] = None) -> Result:
    """Rank every candidate for `value` printed for `model` (any model spec: a reference name, a .prototxt, or
    `model_file` PATH.py:FACTORY with `input_shape`). `records`: tool records to use instead of running or reading
    caches."""
    from . import adapters, models
    from .diff import canonical_ir

    if quantity not in QUANTITIES:
        raise UserError(f"--quantity must be one of {', '.join(QUANTITIES)}, not {quantity!r}")
    if tolerance < 0:
        raise UserError(f"--tolerance must be a non-negative fraction, not {tolerance}")
    batch = optional_count(batch, "--batch")
    printed = parse_value(value)
    if printed.unit == PARAMETERS and quantity != PARAMS:
        quantity = PARAMS
    spec = models.resolve(model, model_file, input_shape)
    if batch is not None:
        spec = dataclasses.replace(spec, input_shape=(batch,) + tuple(spec.input_shape[1:]))
    notes: list[str] = []
    if records is None:
        names = list(tools) if tools is not None else list(adapters.TOOLS)
        for tool in names:
            adapters.get(tool)  # unknown tool: a UserError before anything runs
        # Tools run before the IR is built: the runner forks its TensorFlow worker from this process, which must
        # not have initialised TensorFlow (a Keras-only model's IR would) or the worker hangs.
        # (a records.csv is used only where it has this very model: its input shape, batch and sources)
        records, notes = tool_records(spec, names, run, cache_dir, report_records, progress=progress) \
            if names else (pd.DataFrame(), [])
    ir = canonical_ir(spec.name, {spec.name: spec})
    if ir is None:
        raise UserError(f"cannot read model {model!r}")
    result = explain_number(ir, printed, quantity, tolerance, records, options)
    result.notes = notes
    return result


class _CallableModule(type(os)):
    """`reconcile.which(model, value, ...)`: the module itself is the API function (it returns Result.frame())."""

    def __call__(self, model=None, value=None, **kwargs) -> pd.DataFrame:
        return which(model, value, **kwargs).frame()




sys.modules[__name__].__class__ = _CallableModule


# ------------------------------------------------------------------------------------------------ published numbers
def published_numbers() -> list[dict[str, str]]:
    """reference_models/published.csv (the data lives with the reference models)."""
    import reference_models

    return reference_models.published_numbers()
