"""`reconcile which`: which convention (or which tool) could have produced a number printed for a model?

One source of truth: every candidate is a combination of basis terms per layer kind (conventions/terms.py), summed
over the model's layer IR, or a convention of conventions/llm.py evaluated on a token model's shapes. The
candidates come from a list of generators (CANDIDATE_GENERATORS, an extension point):
- the reference document's conventions and every tool's catalogued conventions (conventions/catalogue), evaluated
  on this model's IR;
- systematic variants of a plain count: 1 op per multiply-accumulate, 2 FLOPs per multiply-accumulate or (2k-1)
  per output; bias adds in or out; FC layers or attention matmuls left out; one further layer kind counted the
  way some catalogued tool counts it; per sample when the batch is above 1;
- parameter counts: every parameter and its departures (biases, FC layers, norms left out; BN running statistics
  counted), and for a token model the families of conventions/llm.py (non-embedding as Kaplan et al. define it,
  without the embedding tables, without an untied output embedding, active per token, encoder and decoder);
- training compute of a token model over D tokens: 6ND with each N, 6 (N/2) D for an encoder-decoder, 3 x a
  forward pass per token, PaLM's and Megatron-LM's formulas (conventions/llm.py), and one training step measured;
- every tool's own printed totals, from a run of that tool on the model (through the one cache of `run` and
  `check`, reconcile/cache.py, or read from reports/records.csv when it has this very model: same name, input
  shape and source hash; or the caller's records).

A number is read as printed (reconcile/printed.py: "4.1 GFLOPs", "300M MAdds", "Total Parameters=110M", a bare
number under a column header given with --unit): its last printed digit sets the match tolerance, its unit says
what is counted. Candidates sit in families (by how they count the weighted layers: 1 per multiply-accumulate,
2 FLOPs per multiply-accumulate, (2k-1) per output; or by which parameters N counts); the families are ranked
(exact, then equal at the printed precision, then closest; at equal match, the family the unit names first, then
one a tool's own total lands in), and the first one is the verdict. When no family comes within 3x, the answer
says which scale or which quantity would fit. A whole table (`which_table`) gets one verdict: the family that
explains the most rows at their printed precision, with the rows that disagree.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

import pandas as pd

from conventions import catalogue, llm
from conventions import terms as T
from conventions.catalogue.base import kind_key
from conventions.ir import (ACT, ADD, ATTENTION, BN, CONV, EINSUM, EMBEDDING, LAYER_NORM, LINEAR, MATMUL, MUL, NORM,
                            POOL_AVG, POOL_MAX, RNN, SDPA, SOFTMAX, Model)

from .errors import UserError
from .printed import (COMPUTE, FLOPS, MACS, PARAMETERS, PARAMS, TRAIN_COMPUTE, Printed, parse_unit,  # noqa: F401
                      parse_value)
from .records import OK, TOTAL
from .validate import optional_count

DEFAULT_RECORDS = Path("reports") / "records.csv"
DEFAULT_TOLERANCE = 0.1
FITS_WITHIN = 3.0  # a family within this factor of the number "comes near" it; beyond it, the scale hint
COLUMNS = ["family_rank", "family", "rank", "source", "tool", "metric", "convention", "value", "relative_error",
           "match", "explanation"]

EXACT, AS_PRINTED, WITHIN, OUTSIDE = "exact", "as printed", "within tolerance", "outside tolerance"
_CLASS_ORDER = {EXACT: 0, AS_PRINTED: 1, WITHIN: 2, OUTSIDE: 3}
DOCUMENT, CATALOGUE, VARIANT, TOOL, CONVENTION = "document", "catalogue", "variant", "tool total", "convention"
ANALYTIC = (DOCUMENT, CATALOGUE, VARIANT, CONVENTION)
QUANTITIES = [COMPUTE, PARAMS, TRAIN_COMPUTE]

# A tool's own label and the unit a paper printed: the same words the value grammar reads.
_METRIC_WORDS = {MACS: r"macs?|maccs?|madds?|mult-?adds?|multiply-?adds?|multiply-?accumulat",
                 FLOPS: r"flops?", PARAMETERS: r"params?|parameters?|num_?params"}

# Families that are not ways of counting multiply-accumulates: parameter counts and training compute.
F_WITH_BUFFERS = "with-buffers"  # BN running statistics counted (Keras' total, a state_dict), for IR models
F_TOOL = "tool"  # a tool's own count that no analytic family equals
_FAMILY_LABELS = {**llm.FAMILY_LABELS,
                  F_WITH_BUFFERS: "parameters with the BN running statistics (Keras' 'Total params', a state_dict)",
                  F_TOOL: "a tool's own count (no convention here equals it)"}
_FAMILY_ORDER = list(_FAMILY_LABELS)  # at equal match and closeness, the first listed (all parameters, 6ND) first


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
    active_params: Optional[int] = None  # a mixture of experts: the parameters one token multiplies (ir.Model)

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
    return ModelTerms(ir.name, by_kind, batch, {"stats": stats, "count": stat_layers}, ir.active_params)


# Layers whose multiply-accumulates are against a weight (a recurrent layer's gate products against W_ih and W_hh
# included), and layers holding attention's activation-by-activation products (QK^T and AV: the ATTN term of an
# nn.MultiheadAttention, an SDPA call, an einsum or a plain matmul).
WEIGHTED_KINDS = (CONV, LINEAR, ATTENTION, MATMUL, EINSUM, RNN)
ATTN_KINDS = (ATTENTION, MATMUL, EINSUM, SDPA)
_KIND_WORDS = {CONV: "conv", LINEAR: "FC", ATTENTION: "attention projection", MATMUL: "matmul", EINSUM: "einsum",
               RNN: "recurrent"}
_EXTRA_WORDS = {POOL_MAX: "pooling", POOL_AVG: "pooling", BN: "BN", LAYER_NORM: "norms", NORM: "norms",
                ACT: "activations", ADD: "element-wise adds", MUL: "element-wise products", SOFTMAX: "softmax",
                EMBEDDING: "embedding lookups"}
MAC_RULES = {"1": "multiply-accumulates", "2": "2 FLOPs per multiply-accumulate",
             "2k-1": "(2k-1) ops per output (k multiplies, k-1 adds)"}
_RULE_IDS = {"1": "macs", "2": "flops", "2k-1": "2k-1"}
_MAC_UNIT = {"1": MACS, "2": FLOPS, "2k-1": FLOPS}
_RULE_COUNT = {"1": "multiply-accumulate count", "2": "count at 2 FLOPs per multiply-accumulate",
               "2k-1": "count at (2k-1) ops per output"}


def _extra_word(kind: str) -> str:
    return _EXTRA_WORDS.get(kind.replace("_adaptive", ""), kind.replace("_", " "))


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
    extras: tuple[str, ...] = ()  # other layer kinds it counts (pooling, BN, activations, ...)

    @property
    def family_key(self) -> tuple[str, bool]:
        return self.rule, self.per_sample

    def name(self) -> str:
        """What the counting includes, layer kind by layer kind: 'multiply-accumulates of conv+FC layers and the
        attention matmuls, with bias adds, plus pooling'."""
        words = MAC_RULES.get(self.rule, f"{self.rule} ops per multiply-accumulate" if self.rule else
                              "no multiply-accumulates")
        layers = "+".join(dict.fromkeys(_KIND_WORDS[k] for k in self.included))
        text = f"{words} of {layers} layers" if layers else words
        if self.attn_matmuls:
            text += " and the attention matmuls"
        if self.left_out:
            text += f" ({'+'.join(dict.fromkeys(_KIND_WORDS[k] for k in self.left_out))} left out)"
        if self.attn_matmuls is False:
            text += ", without the attention matmuls"
        if self.bias:
            text += ", with bias adds" if self.bias == self.biased else \
                f", with {'+'.join(_KIND_WORDS[k] for k in self.bias)} bias adds"
        if self.extras:
            text += ", plus " + " and ".join(dict.fromkeys(_extra_word(k) for k in self.extras))
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
    attn_kinds = [k for k in ATTN_KINDS if mt.has(k, T.ATTN)]
    attn = bool(any(counting.combo(k).get(T.ATTN, 0) for k in attn_kinds)) if attn_kinds else None
    extras = tuple(k for k in mt.kinds if k not in WEIGHTED_KINDS + ATTN_KINDS
                   and any(c and mt.by_kind[k].get(t) for t, c in counting.combo(k).items()))
    return Core(first, included, left_out, bias, biased, attn, counting.per_sample and mt.batch > 1, extras)


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
    source: str  # DOCUMENT, CATALOGUE, VARIANT, CONVENTION or TOOL
    tool: str  # the tool a catalogued convention or a printed total belongs to ("" for variants)
    metric: str
    convention: str  # the per-kind formula
    value: float
    explanation: str  # what it counts, in one sentence
    complexity: int  # departures from a plain count; 0 for the document's and the catalogue's conventions
    core: Optional[Core] = None
    tool_version: str = ""
    counting: Optional[Counting] = None  # the per-kind combination a conventions-based count evaluates
    family: str = ""  # a parameter or training-compute family (llm F_* / T_* keys); "" for a way of counting MACs
    departure: str = ""  # what a parameter variant leaves out or adds ("biases left out")
    citation: str = ""

    @property
    def family_key(self) -> tuple:
        if self.family:
            return (self.family, False)
        return self.core.family_key if self.core else ("?", False)

    @property
    def label(self) -> str:
        if self.source == TOOL:
            return f"{self.tool} {self.metric}"
        if self.source in (DOCUMENT, CATALOGUE):
            return f"{self.tool} {self.metric} (catalogue{', ' + self.tool_version if self.tool_version else ''})"
        return self.metric if self.source == CONVENTION else self.convention


@dataclass(frozen=True)
class Context:
    """What a candidate generator sees: the layer IR and its terms (None for a token model answered from its
    shapes alone), the shapes of a token model (conventions/llm.py), a run's records."""

    name: str
    ir: Optional[Model]
    terms: Optional[ModelTerms]
    quantity: str
    records: Optional[pd.DataFrame]
    options: dict = field(default_factory=dict)  # tokens (train-compute)
    shapes: Optional[llm.Shapes] = None


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
    if ctx.terms is None or ctx.quantity == TRAIN_COMPUTE:
        return []
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
        out.append(Candidate(source, tool, metric, formula, value, text, 0, core, versions, counting))
    return out


def _extra_treatments(mt: ModelTerms) -> dict[str, list[dict[str, int]]]:
    """Per kind that is not weighted, the distinct ways the catalogue counts it (the document's first)."""
    out: dict[str, list[dict[str, int]]] = {}
    for entry in sorted(catalogue.CATALOGUE, key=lambda e: e.tool != "document"):
        if _entry_quantity(entry) != COMPUTE:
            continue
        for kind in entry.kinds:
            if kind in WEIGHTED_KINDS + ATTN_KINDS or kind not in mt.by_kind:
                continue
            combo = {t: c for t, c in entry.combo if mt.by_kind[kind].get(t)}
            if combo and combo not in out.setdefault(kind, []):
                out[kind].append(combo)
    return out


def _weighted(rule: str, kind: str, weights: bool, bias: bool, attn: bool) -> dict[str, int]:
    """One kind's combination: its multiply-accumulates against weights by the rule (when `weights`), its
    attention products at 1 or 2 per multiply-accumulate (when `attn`), its bias adds (when `bias`)."""
    combo: dict[str, int] = {}
    if weights:
        combo.update({"1": {T.MACC: 1}, "2": {T.MACC: 2}, "2k-1": {T.MACC: 2, T.OUT: -1}}[rule])
        if kind != CONV and kind != LINEAR:
            combo.pop(T.OUT, None)  # (2k-1) per output is defined for conv and FC outputs only: 2 per MACC here
        if bias:
            combo[T.BIAS] = 1
    if attn and kind in ATTN_KINDS:
        combo[T.ATTN] = 1 if rule == "1" else 2
    return combo


def systematic_variants(ctx: Context) -> list[Candidate]:
    """Plain counts of the weighted layers and their departures: bias adds, FC or attention matmuls left out,
    one more layer kind counted as some catalogued tool counts it, per sample."""
    if ctx.quantity != COMPUTE or ctx.terms is None:
        return []
    mt = ctx.terms
    present = [k for k in WEIGHTED_KINDS if mt.has(k, T.MACC)]
    attn_kinds = [k for k in ATTN_KINDS if mt.has(k, T.ATTN)]
    if not present and not attn_kinds:
        return []
    biased = [k for k in present if mt.has(k, T.BIAS)]
    bias_options = [()] + ([tuple(biased)] if biased else []) + ([(CONV,)] if CONV in biased and len(biased) > 1
                                                                 else [])
    scopes = [tuple(present)]
    if CONV in present and LINEAR in present:
        scopes.append(tuple(k for k in present if k != LINEAR))
    attn_options = (True, False) if attn_kinds and present else (True,)
    extras = [(None, None)] + [(k, c) for k, combos in _extra_treatments(mt).items() for c in combos]
    per_sample_options = (False, True) if mt.batch > 1 else (False,)
    out = []
    for rule in MAC_RULES:
        for scope in scopes:
            for bias in bias_options:
                for attn in attn_options:
                    for extra_kind, extra in extras:
                        for per_sample in per_sample_options:
                            per_kind = {k: _weighted(rule, k, k in scope, k in bias, attn)
                                        for k in dict.fromkeys(present + attn_kinds)}
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
                                text += f" ({extra_kind} as {T.format_combo(extra)})"
                            if per_sample:
                                text += f" (the batch of {mt.batch} divided out)"
                            out.append(Candidate(VARIANT, "", COMPUTE, formula, mt.value(counting), text, complexity,
                                                 core, counting=counting))
    return out


def parameter_variants(ctx: Context) -> list[Candidate]:
    """All parameters (weights and biases of every layer) and its departures: biases, FC layers or norm scale and
    shift left out; BN running statistics (buffers) counted, as Keras' total and a state_dict do. For a model
    read from its layer IR (a token model's families come from its shapes: llm_conventions)."""
    if ctx.quantity != PARAMS or ctx.terms is None or ctx.shapes is not None:
        return []
    mt = ctx.terms
    norms = [k for k in (BN, LAYER_NORM) if mt.has(k, T.WEIGHTS)]
    stats = mt.extra_params.get("stats", 0)
    out = []
    for bias in (True, False) if any(mt.has(k, T.BIAS_PARAMS) for k in mt.kinds) else (True,):
        for fc in (True, False) if mt.has(LINEAR, T.WEIGHTS) and mt.has(CONV, T.WEIGHTS) else (True,):
            for norm in (True, False) if norms else (True,):
                for stat in ("", "stats", "stats+count") if stats and norm else ("",):  # statistics of kept norms
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
                    departure = ", ".join(left) + " left out" if left else ""
                    if stat == "stats+count":
                        departure = ", ".join(filter(None, [departure, "num_batches_tracked counted"]))
                    out.append(Candidate(VARIANT, "", PARAMS, f"{name}: {formula}" + ("" if fc else " [no FC]")
                                         + ("" if norm else " [no norm]"), value, text, complexity, None,
                                         family=F_WITH_BUFFERS if stat else llm.F_ALL, departure=departure,
                                         citation="torch.nn.Module.parameters / state_dict; Keras Model.summary"))
    if mt.active_params is not None:  # routed experts: a token multiplies k of E (the front end counted them)
        active = next(e for e in llm.CONVENTIONS if e.family == llm.F_ACTIVE and e.quantity == llm.PARAMS)
        out.append(Candidate(CONVENTION, "", active.name, active.formula, float(mt.active_params),
                             f"{active.name}: {active.formula}, as the layer IR counts the routed experts "
                             f"({active.citation})", 0, None, family=llm.F_ACTIVE, citation=active.citation))
    return out


def llm_conventions(ctx: Context) -> list[Candidate]:
    """A token model's parameter families and training-compute families (conventions/llm.py), each convention a
    member of its family; training compute is per token times D (options['tokens'])."""
    if ctx.shapes is None or ctx.quantity not in (PARAMS, TRAIN_COMPUTE):
        return []
    quantity = llm.PARAMS if ctx.quantity == PARAMS else llm.TRAIN
    tokens = float(ctx.options.get("tokens") or 0) if ctx.quantity == TRAIN_COMPUTE else 1.0
    if not tokens:
        return []
    out = []
    for e in llm.evaluate_all(ctx.shapes, quantity):
        value = float(e.value) * tokens if ctx.quantity == TRAIN_COMPUTE else float(e.value)
        if value <= 0:
            continue
        basis = f"{'tokens x (' if ctx.quantity == TRAIN_COMPUTE else ''}{e.basis_text}" \
                f"{')' if ctx.quantity == TRAIN_COMPUTE else ''}"
        text = f"{e.name}: {e.formula}" + (f" = {basis}" if e.basis else "") + f" ({e.citation})"
        out.append(Candidate(CONVENTION, "", e.name, e.formula, value, text, 0, None, family=e.family,
                             citation=e.citation))
    return out


def measured_training(ctx: Context) -> list[Candidate]:
    """The measured family of train-compute: one training step traced at the dispatch level, scaled to D tokens
    (options['measured'], a reconcile.which_training.MeasuredCandidate)."""
    measured = ctx.options.get("measured")
    if measured is None or ctx.quantity != TRAIN_COMPUTE:
        return []
    return [Candidate(CONVENTION, "", measured.name, measured.basis, measured.value,
                      f"{measured.name}: {measured.basis} ({measured.citation})", 0, None, family=llm.T_MEASURED,
                      citation=measured.citation)]


def counted_parameters(ctx: Context) -> list[Candidate]:
    """A model built from a configuration (hf:, preset:) that is not a token model: its parameters as the spec's
    meta-device probe counted them (options['n_params']), so a parameter count needs no trace."""
    n_params = ctx.options.get("n_params")
    if ctx.quantity != PARAMS or ctx.terms is not None or ctx.shapes is not None or not n_params:
        return []
    return [Candidate(CONVENTION, "", "all parameters", "sum of every parameter tensor", float(n_params),
                      f"all parameters of the built model: {_n(n_params)}", 0, None, family=llm.F_ALL,
                      citation="the built model (torch.nn.Module.parameters, counted on the meta device)")]


def tool_totals(ctx: Context) -> list[Candidate]:
    """Every total a tool printed for the model, in the family its catalogued convention falls in (a parameter
    total: the family of the analytic count it equals, see `candidates`)."""
    records = ctx.records
    if records is None or records.empty or ctx.quantity == TRAIN_COMPUTE:
        return []
    rows = records[(records["model"] == ctx.name) & (records["layer"] == TOTAL)
                   & (records["quantity"] == ctx.quantity) & (records["status"] == OK)]
    countings = catalogued_countings(ctx.quantity, ctx.terms.kinds) if ctx.terms is not None else []
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
            core = core_of(Counting(()), ctx.terms) if ctx.quantity == COMPUTE and ctx.terms is not None else None
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


# The extension point: a generator takes a Context and returns candidates. Another quantity appends its name to
# QUANTITIES and its generator here, reading what it needs from Context.options.
Generator = Callable[[Context], list[Candidate]]
CANDIDATE_GENERATORS: list[Generator] = [document_and_catalogue, systematic_variants, parameter_variants,
                                         llm_conventions, measured_training, counted_parameters, tool_totals]


def _parameter_family(cands: list[Candidate]) -> list[Candidate]:
    """A parameter count with no family of its own (a catalogued tool convention, a tool's total) joins the
    family of the analytic count it equals; else it is a tool's own count."""
    analytic = sorted((c for c in cands if c.family and c.source in ANALYTIC),
                      key=lambda c: (c.complexity, _FAMILY_ORDER.index(c.family) if c.family in _FAMILY_ORDER
                                     else len(_FAMILY_ORDER)))
    out = []
    for c in cands:
        if not c.family:
            same = next((a for a in analytic if a.value == c.value), None)
            c = dataclasses.replace(c, family=same.family if same else F_TOOL,
                                    departure=same.departure if same else "")
        out.append(c)
    return out


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
    return _parameter_family(unique) if ctx.quantity == PARAMS else unique


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

    @property
    def id(self) -> str:
        """A model-independent name: 'macs', 'flops', '2k-1' (+'-per-sample') for a way of counting
        multiply-accumulates, the conventions.llm key ('non-embedding', '6nd', ...) for the other families."""
        return _family_id(self.key)

    @property
    def citation(self) -> str:
        return next((m.candidate.citation for m in self.members if m.candidate.citation), "")


def _family_id(key: tuple) -> str:
    rule, per_sample = key
    if rule in _FAMILY_LABELS or rule == "?":
        return rule
    base = _RULE_IDS.get(rule, f"{rule}-per-mac" if rule else "no-macs")
    return base + ("-per-sample" if per_sample else "")


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
    pattern = _METRIC_WORDS.get(printed.unit)
    return bool(pattern and re.search(pattern, metric, re.I))


def _member_key(r: Ranked, printed: Printed) -> tuple:
    c = r.candidate
    cls = _CLASS_ORDER[r.match]
    tool_first = 0 if c.source == TOOL else 1  # a tool's own total above an analytic one of equal match
    if cls <= 1:  # a family's own definition, then a named convention (the document's, a tool's), then a variant
        definition = 0 if c.family and c.source in (VARIANT, CONVENTION) else 1 if c.source != VARIANT else 2
        loose = abs(Decimal(repr(float(c.value))) - printed.value) > printed.attribution_half_unit
        return cls, loose, tool_first, not _unit_matches(c.metric, printed), c.complexity, definition, \
            abs(r.relative_error), c.label
    return cls, abs(r.relative_error), tool_first, c.complexity, c.label


def quantity_of(r: Ranked) -> str:
    return PARAMS if r.candidate.metric == PARAMS or "param" in r.candidate.metric.lower() else COMPUTE


def _family_name(key: tuple, members: list[Ranked]) -> str:
    rule = key[0]
    best_class = _CLASS_ORDER[members[0].match]
    analytic = sorted((m for m in members if m.candidate.source != TOOL and _CLASS_ORDER[m.match] == best_class),
                      key=lambda m: (bool(m.candidate.core and m.candidate.core.left_out),
                                     bool(m.candidate.core and m.candidate.core.bias),
                                     bool(m.candidate.core and m.candidate.core.extras),
                                     m.candidate.complexity, abs(m.relative_error)))
    top = analytic[0] if analytic else members[0]
    if rule in _FAMILY_LABELS:
        label = _FAMILY_LABELS[rule]
        return f"{label}, {top.candidate.departure}" if top.candidate.departure else label
    if rule and top.candidate.core is not None and (top.candidate.core.rule or analytic):
        return top.candidate.core.name()
    return "a tool's own count (no catalogued convention covers its multiply-accumulates)"


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
        out.append(Family(key, _family_name(key, members), members, agrees))

    def family_key(f: Family) -> tuple:
        best = f.best
        cls = _CLASS_ORDER[best.match]
        in_class = [m for m in f.members if _CLASS_ORDER[m.match] == cls]
        has_tool = any(m.candidate.source == TOOL for m in in_class)
        unit = 0 if f.unit_agrees is not False else 1
        named = 0 if not printed.family or f.key[0] in (printed.family, f"6nd-{printed.family}") else 1
        closest = min(abs(m.relative_error) for m in in_class)
        order = _FAMILY_ORDER.index(f.key[0]) if f.key[0] in _FAMILY_ORDER else -1
        if cls <= 1:  # at the printed precision: the closer reading (two significant digits), then the plainer one
            loose = all(abs(Decimal(repr(float(m.candidate.value))) - printed.value) > printed.attribution_half_unit
                        for m in in_class)
            plainest = min((m.candidate.complexity for m in in_class if m.candidate.source != TOOL), default=9)
            return cls, unit, named, loose, not has_tool, order, plainest, closest, f.name
        # outside the printed precision, families within 0.05% of each other are as close: the usual one first
        return cls, unit, named, False, not has_tool, round(closest, 3), order, closest, f.name
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
        if key not in present and (key[0] in MAC_RULES or key[0] in _FAMILY_LABELS):
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


def _without(counting: Counting, kinds: Iterable[str], terms: Iterable[str] = ()) -> Counting:
    """The counting with `terms` removed from `kinds` (every term when `terms` is empty)."""
    kinds, terms = set(kinds), set(terms)
    per_kind = []
    for kind, combo in counting.per_kind:
        if kind in kinds:
            combo = tuple((t, c) for t, c in combo if terms and t not in terms)
        if combo:
            per_kind.append((kind, combo))
    return Counting(tuple(per_kind), counting.per_sample)


def _with(counting: Counting, additions: dict[str, dict[str, int]]) -> Counting:
    per_kind = {kind: dict(combo) for kind, combo in counting.per_kind}
    for kind, combo in additions.items():
        for term, coef in combo.items():
            per_kind.setdefault(kind, {})[term] = per_kind.get(kind, {}).get(term, 0) + coef
    return Counting(tuple((k, tuple(c.items())) for k, c in per_kind.items()), counting.per_sample)


def deciding(best: Ranked, mt: Optional[ModelTerms], printed: Printed, tolerance: float = DEFAULT_TOLERANCE) \
        -> list[str]:
    """What decided a verdict: each part of the best count (the FC layers, the attention matmuls, the bias adds,
    pooling, ...) whose leaving out moves it off the printed number to a near miss (within the tolerance), and each
    weighted part it leaves out (FC layers, attention matmuls) whose inclusion would; with the value without (or
    with) it. ViT-B/16's 17.6 GFLOPs: the attention matmuls (without them 16.85 G)."""
    c = best.candidate
    if c.core is None or c.counting is None or mt is None or best.match not in (EXACT, AS_PRINTED):
        return []
    core, counting = c.core, c.counting
    per_mac = {"1": 1, "2": 2, "2k-1": 2}.get(core.rule, 0)
    options: list[tuple[str, str, Counting]] = []
    attn_kinds = [k for k in ATTN_KINDS if mt.has(k, T.ATTN)]
    if core.attn_matmuls:
        options.append(("the attention matmuls", "without", _without(counting, attn_kinds, (T.ATTN,))))
    elif core.attn_matmuls is False and per_mac:
        options.append(("the attention matmuls", "with", _with(counting, {k: {T.ATTN: per_mac} for k in attn_kinds})))
    if LINEAR in core.included and len(core.included) > 1:
        options.append(("the FC layers", "without", _without(counting, (LINEAR,))))
    elif LINEAR in core.left_out and per_mac:
        options.append(("the FC layers", "with", _with(counting, {LINEAR: {T.MACC: per_mac}})))
    if core.bias:
        options.append(("the bias adds", "without", _without(counting, core.bias, (T.BIAS,))))
    for word in dict.fromkeys(_extra_word(k) for k in core.extras):
        kinds = [k for k in core.extras if _extra_word(k) == word]
        options.append((word, "without", _without(counting, kinds)))
    out = []
    for part, way, other in options:
        match, error = classify(mt.value(other), printed, tolerance)
        if match == WITHIN:
            out.append(f"{part} ({way} them: {printed.show(mt.value(other))}, {error:+.2%})")
    return out


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
                 progress: Optional[Callable] = None, quiet_missing: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """The records of `tools` on `spec`: from a run's records.csv when it has them for this very model, else from
    the cache `run` and `check` use (reconcile/cache.py; `cache_dir`: another cache folder), running the missing
    tools if `run` (in parallel, the model's torch jobs spread over the runner's lanes, and keeping their records
    there). `quiet_missing`: no note for the tools neither found nor run (the caller says how to run them)."""
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
        if progress is not None:
            for done, job in enumerate((j for j in jobs if hits[j.tool] is not None), 1):
                progress(done, len(jobs), job, hits[job.tool], 0.0, cached=True)
        offset = len(jobs) - len(missing)
        ran = None if progress is None else \
            (lambda done, total, job, records, seconds, cached=False:
             progress(offset + done, len(jobs), job, records, seconds, cached=cached))
        fresh = run_cached([job for job in jobs if job.tool in missing], timeout, ran, root=root, spread=True)
        by_tool: dict[str, list] = {}
        for record in fresh:
            by_tool.setdefault(record.tool, []).append(record)
        records = [record for tool in tools for record in (hits[tool] or by_tool.get(tool, []))]
        notes.append(f"ran {', '.join(missing)}; cached in {where}")
    else:
        records = [record for tool in tools for record in hits[tool] or []]
        if missing and not quiet_missing:
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
    hints: list[str] = field(default_factory=list)  # no family within 3x: the scale or quantity that would fit
    decided: list[str] = field(default_factory=list)  # the parts whose inclusion makes the verdict's number
    tokens: Optional[float] = None  # training tokens D (train-compute)
    tools_consulted: bool = False  # some tool's totals were among the candidates
    measured: Optional[Any] = None  # train-compute: the measured training step (which_training.MeasuredCandidate)

    @property
    def ranked(self) -> list[Ranked]:
        return [m for f in self.families for m in f.members]

    @property
    def top(self) -> Optional[Family]:
        return self.families[0] if self.families else None

    @property
    def near(self) -> bool:
        """The verdict's family comes within FITS_WITHIN of the number."""
        top = self.top
        return top is not None and 1 / FITS_WITHIN <= 1 + top.best.relative_error <= FITS_WITHIN

    def tool_matches(self) -> list[Ranked]:
        """The tools that print the number: their own total in the verdict's family, equal to it at its printed
        precision and to at least two significant digits ('300M' is not what a tool printing 327M printed)."""
        top = self.top
        if top is None:
            return []
        hits = [r for r in top.tools if r.match in (EXACT, AS_PRINTED)
                and abs(Decimal(repr(float(r.candidate.value))) - self.printed.value)
                <= self.printed.attribution_half_unit]
        return sorted(hits, key=lambda r: (not _unit_matches(r.candidate.metric, self.printed),
                                           abs(r.relative_error)))

    def verdict(self) -> str:
        """One line: the family, how close, what decided it, and the tools whose own total prints the number."""
        top = self.top
        if top is None:
            return f"{self.model} {self.printed}: no candidate" + (f" ({self.notes[0]})" if self.notes else "")
        best = top.best
        value = self.printed.show(best.candidate.value)
        if best.match in (EXACT, AS_PRINTED):
            head = f"{self.model} {self.printed}: {top.name} ({value}" + \
                (", exact)" if best.match == EXACT else ", equal at the printed precision)")
        elif not self.near:
            head = (f"{self.model} {self.printed}: no family comes within {FITS_WITHIN:g}x; nearest: {top.name} "
                    f"({value}, {best.relative_error:+.2%})")
        else:
            head = (f"{self.model} {self.printed}: nothing matches at the printed precision; nearest: {top.name} "
                    f"({value}, {best.relative_error:+.2%})")
        if self.decided:
            head += "; decided by " + ", ".join(self.decided)
        if self.measured is not None and top.id != llm.T_MEASURED:
            from .which_training import distance_from_measured

            head += f"; which here is {distance_from_measured(best.candidate.value, self.measured)}"
        tools = self.tool_matches()
        if tools:
            head += "; printed by " + ", ".join(f"{r.candidate.tool} {r.candidate.metric} "
                                                f"{self.printed.show(r.candidate.value)}" for r in tools)
        elif best.match in (EXACT, AS_PRINTED) and self.tools_consulted:
            head += "; no tool total here lands there"
        return head

    def unit_note(self) -> str:
        """How the unit was read and used."""
        p = self.printed
        parts = list(p.notes)
        if p.per_day:
            parts.append(f"{p.unit_text!r} read as petaflop/s-days: 1 PF-day = 1e15 FLOP/s x 86,400 s = 8.64e19 "
                         f"FLOPs, so {p.text} = {float(p.value):.4g} FLOPs")
        if self.quantity == TRAIN_COMPUTE:
            return "; ".join(parts)
        if self.quantity == PARAMS:
            if p.family:
                parts.append(f"unit {p.unit_text!r} names {llm.FAMILY_LABELS.get(p.family, p.family)}: at equal "
                             f"match that family ranks first")
            return "; ".join(parts)
        if not p.unit:
            return "; ".join(parts + ["no unit printed: every family ranked by closeness alone"])
        top = self.top
        favoured = "1 per multiply-accumulate" if p.unit == MACS else "2 FLOPs per multiply-accumulate or (2k-1) " \
                                                                      "per output"
        text = f"unit {p.unit_text!r} read as {p.unit}: at equal match, families counting {favoured} rank first"
        if top is not None and top.unit_agrees is False:
            text += (f"; none of those matches as well, so the verdict is a {_RULE_COUNT.get(top.key[0], top.name)} "
                     f"printed as {p.unit_text}" + (" (papers often print multiply-accumulates as 'FLOPs')"
                                                     if p.unit == FLOPS else ""))
        return "; ".join(parts + [text])

    def frame(self) -> pd.DataFrame:
        return to_frame(self)

    def to_json(self, show_all: bool = False) -> dict:
        """The answer as data: the same for every quantity (`--format json`)."""
        families = [{"rank": i, "family": fam.name, "id": fam.id, "match": fam.best.match,
                     "value": fam.best.candidate.value, "relative_error": round(fam.best.relative_error, 6),
                     "by": fam.best.candidate.label, "citation": fam.citation,
                     "tools": [f"{r.candidate.tool} {r.candidate.tool_version} {r.candidate.metric}"
                               for r in fam.tools if r.match in (EXACT, AS_PRINTED)],
                     "members": len(fam.members)}
                    for i, fam in enumerate(self.families, 1)]
        payload = {"model": self.model, "quantity": self.quantity, "printed": str(self.printed),
                   "value": float(self.printed.value), "half_unit": float(self.printed.half_unit),
                   "unit": self.printed.unit, "unit_text": self.printed.unit_text, "tokens": self.tokens,
                   "verdict": self.verdict(), "unit_note": self.unit_note(), "decided_by": self.decided,
                   "hints": self.hints, "families": families, "notes": self.notes, "unavailable": self.unavailable}
        if self.measured is not None:
            payload["measured"] = {"value": self.measured.value, "flops_per_token": float(self.measured.per_token),
                                   "basis": self.measured.basis, "citation": self.measured.citation}
        if show_all:
            payload["candidates"] = json.loads(self.frame().to_json(orient="records"))
        return payload


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


_SCALE_NAMES = {3: "thousands", 6: "millions", 9: "billions", 12: "trillions"}
_QUANTITY_WORDS = {PARAMS: "a parameter count", COMPUTE: "a forward compute count",
                   TRAIN_COMPUTE: "a training compute"}


def _scaled(printed: Printed, power: int) -> Printed:
    factor = Decimal(10) ** power
    return dataclasses.replace(printed, text=f"{printed.text} x1e{power}", value=printed.value * factor,
                               half_unit=printed.half_unit * factor,
                               attribution_half_unit=printed.attribution_half_unit * factor,
                               scale=printed.scale + power if printed.scale else printed.scale)


def _nearest(cands: Sequence[Candidate], value: float) -> Optional[Candidate]:
    usable = [c for c in cands if c.value > 0]
    return min(usable, key=lambda c: abs(math.log(c.value / value))) if usable else None


def _forward_proxies(ctx: Context) -> list[Candidate]:
    """A token model's forward compute from its shapes (conventions/llm.py, per token x batch x seq_len): what a
    quantity hint compares a number with when the layer IR was not traced."""
    s = ctx.shapes
    if s is None:
        return []
    out = []
    for e in llm.evaluate_all(s, llm.FORWARD):
        out.append(Candidate(CONVENTION, "", e.name, e.formula, float(e.value) * s.batch * s.n_ctx,
                             f"{e.name} x {s.batch * s.n_ctx} tokens", 0))
    return out


def sanity_hints(ctx: Context, printed: Printed, fams: Sequence[Family], cands: Sequence[Candidate],
                 tolerance: float) -> list[str]:
    """When no family comes within FITS_WITHIN of the number: the scale (x1e3 ... x1e12) at which one does, and
    another quantity whose families do (a parameter count read as compute, a forward count as training)."""
    value = float(printed.value)
    if not fams or any(1 / FITS_WITHIN <= f.best.candidate.value / value <= FITS_WITHIN for f in fams):
        return []
    out = []
    best_power, best_gap = None, None
    for power in (3, 6, 9, 12, -3, -6, -9, -12):
        near = _nearest(cands, value * 10 ** power)
        if near is None:
            continue
        gap = abs(math.log(near.value / (value * 10 ** power)))
        if gap <= math.log(FITS_WITHIN) and (best_gap is None or gap < best_gap):
            best_power, best_gap = power, gap
    if best_power is not None:
        scaled = _scaled(printed, best_power)
        top = families(rank(cands, scaled, tolerance), scaled)[0]
        words = f"the number may be in {_SCALE_NAMES[best_power]}" if best_power in _SCALE_NAMES else \
            f"the number may be in a unit 1e{-best_power} times smaller"
        match = "equal at the printed precision" if top.best.match in (EXACT, AS_PRINTED) else \
            f"{top.best.relative_error:+.2%}"
        out.append(f"x1e{best_power} fits: {words} ({top.name}: {_n(top.best.candidate.value)}, {match})")
    for other in (q for q in QUANTITIES if q != ctx.quantity):
        if other == TRAIN_COMPUTE and not ctx.options.get("tokens"):
            if ctx.quantity == COMPUTE and ctx.shapes is not None and min(c.value for c in cands) * 1e4 < value:
                out.append("this may be training compute: --quantity train-compute --tokens D")
            continue
        if other == COMPUTE and ctx.terms is None:
            pool = _forward_proxies(ctx)
        else:
            pool = candidates(dataclasses.replace(ctx, quantity=other, records=None))
        if not pool:
            continue
        top = families(rank(pool, printed, tolerance), printed)[0]
        if 1 / FITS_WITHIN <= 1 + top.best.relative_error <= FITS_WITHIN:
            match = "equal at the printed precision" if top.best.match in (EXACT, AS_PRINTED) else \
                f"{top.best.relative_error:+.2%}"
            out.append(f"this looks like {_QUANTITY_WORDS[other]}: --quantity {other} ({top.name}: "
                       f"{_n(top.best.candidate.value)}, {match})")
    return out


def explain_number(ir: Optional[Model], printed: Printed, quantity: str = COMPUTE,
                   tolerance: float = DEFAULT_TOLERANCE, records: Optional[pd.DataFrame] = None,
                   options: Optional[dict] = None, shapes: Optional[llm.Shapes] = None,
                   name: Optional[str] = None) -> Result:
    """Rank every candidate for `printed` on a layer IR and `records` (a run's records; None: analytic only), or on
    a token model's `shapes` (parameter and training-compute families). `options` reach the generators
    (Context.options: 'tokens' for train-compute)."""
    options = dict(options or {})
    name = name or (ir.name if ir is not None else "")
    ctx = Context(name, ir, model_terms(ir) if ir is not None else None, quantity, records, options, shapes)
    cands = candidates(ctx)
    notes = []
    if not cands:
        if quantity == TRAIN_COMPUTE and not options.get("tokens"):
            notes.append("training compute needs the training tokens D: --tokens")
        elif quantity == TRAIN_COMPUTE and shapes is None:
            notes.append("training compute is ranked for token models (hf:, preset:), whose conventions count N "
                         "and D")
    fams = families(rank(cands, printed, tolerance), printed)
    decided: list[str] = []
    if fams:
        analytic = next((m for m in fams[0].members if m.candidate.source != TOOL), None)
        if analytic is not None:
            decided = deciding(analytic, ctx.terms, printed, tolerance)
    hints = sanity_hints(ctx, printed, fams, cands, tolerance) if cands else []
    tools = records is not None and not records.empty and quantity != TRAIN_COMPUTE
    return Result(name, quantity, printed, fams, notes, _unavailable(records, quantity) if tools else [], hints,
                  decided, options.get("tokens"), tools)


def _token_shapes(spec) -> Optional[llm.Shapes]:
    """A token model's shapes for conventions/llm.py; None for other models or a configuration they do not fit."""
    from . import models

    return models.llm_shapes(spec) if spec.token_model else None


def resolve_quantity(quantity: Optional[str], printed: Printed, tokens: Optional[float]) -> str:
    """--quantity if given (a unit that says otherwise is an error), else what the unit says, else training
    compute when --tokens is given, else compute."""
    if quantity is not None and quantity not in QUANTITIES:
        raise UserError(f"--quantity must be one of {', '.join(QUANTITIES)}, not {quantity!r}")
    said = printed.quantity
    if quantity is not None and said and said != quantity and not (said == COMPUTE and quantity == TRAIN_COMPUTE):
        raise UserError(f"{printed.text!r} is {_QUANTITY_WORDS[said]} ({printed.unit_text!r}), not --quantity "
                        f"{quantity}")
    chosen = quantity or (said if said and not (said == COMPUTE and tokens is not None) else
                          (TRAIN_COMPUTE if tokens is not None else COMPUTE))
    if chosen == TRAIN_COMPUTE and tokens is None:
        raise UserError(f"{printed.text!r}: training compute needs the training tokens D: --tokens (e.g. 300e9)")
    if tokens is not None and chosen != TRAIN_COMPUTE:
        raise UserError(f"--tokens goes with training compute, not {_QUANTITY_WORDS[chosen]}")
    return chosen


def _resolve(model: Optional[str], model_file: Optional[str], input_shape: Optional[str], seq_len: Optional[int],
             trace: bool):
    """models.resolve, an hf:/preset: spec kept in the one cache once resolved (a second question on the same
    model runs no job), with its layer IR traced on the meta device by the resolving job when `trace` (kept on disk
    as well)."""
    from . import models
    from .kept_specs import is_kept, request, resolve_kept
    from .validate import optional_count

    text = (model or "").strip()
    if model_file or not is_kept(text):
        return models.resolve(model, model_file, input_shape, seq_len=seq_len)
    key = request(text, optional_count(seq_len, "--seq-len"), input_shape)
    return resolve_kept([key], trace=trace)[key]


def _trace(spec) -> Model:
    """The model's layer IR (diff.canonical_ir: traced in a job process), or one line saying why there is none. A
    configuration-built model (hf:, preset:) is traced on the meta device (hf_specs.on_meta: the same products in
    a fraction of the time), on its own device if that fails."""
    from .cache import stored_ir
    from .diff import canonical_ir
    from .hf_specs import on_meta
    from .models import IR_FAILURES, cached_ir, canonical_framework, ir_key

    light = on_meta(spec)
    ir = None
    if light is not spec:  # traced by the job that resolved it (models.resolve(trace=True)), kept, or traced now
        ir = cached_ir(light, "torch") or stored_ir(light, "torch") or canonical_ir(light.name, {light.name: light})
    else:
        framework = canonical_framework(spec)
        ir = stored_ir(spec, framework) if framework else None  # kept on disk: no worker to start
    ir = ir or canonical_ir(spec.name, {spec.name: spec})
    if ir is None:
        why = IR_FAILURES.get(ir_key(spec, canonical_framework(spec) or ""), ("",))[0]
        raise UserError(f"cannot read model {spec.name!r}" + (f": {why}" if why else
                                                               " (its trace failed or timed out)"))
    return ir


def which(model: str, value: str, quantity: Optional[str] = None, tolerance: float = DEFAULT_TOLERANCE,
          tools: Optional[Sequence[str]] = None, run: bool = True, batch: Optional[int] = None,
          cache_dir: Optional[str] = None, report_records: Optional[Path] = DEFAULT_RECORDS,
          progress: Optional[Callable] = None, records: Optional[pd.DataFrame] = None,
          model_file: Optional[str] = None, input_shape: Optional[str] = None,
          options: Optional[dict] = None, unit: Optional[str] = None, tokens: Optional[float] = None,
          seq_len: Optional[int] = None, measure: Optional[bool] = None, confirm: bool = False) -> Result:
    """Rank every candidate for `value` printed for `model` (any model spec: a reference name, a .prototxt,
    `model_file` PATH.py:FACTORY with `input_shape`, hf:, preset:, module:). `unit`: the column header of a bare
    VALUE. `quantity`: compute, params or train-compute (default: what the unit says, else compute); `tokens`: the
    training tokens D of train-compute.

    The answer comes from the conventions first: the model's terms (its layer IR, or a token model's shapes and
    counted parameter groups), no counting tool run. Tools confirm it:
    - `tools` None: the tools whose catalogued convention can land in the candidate families (`confirming_tools`)
      are consulted where their records are already cached (the one cache, or a run's `report_records` covering
      this very model); with `confirm` the missing ones run (unless `run` is False), in parallel;
    - `tools` a list: exactly those tools (cached, else run unless `run` is False); [] for the conventions only.
    `measure` (default: `confirm`): train-compute ranks beside its formulas one training step of the model, traced
    in a job process and scaled to D. `records`: tool records to use instead of running or reading caches."""
    from . import adapters, models

    if tolerance < 0:
        raise UserError(f"--tolerance must be a non-negative fraction, not {tolerance}")
    batch = optional_count(batch, "--batch")
    if tokens is not None and not (isinstance(tokens, (int, float)) and 0 < tokens < float("inf")):
        raise UserError(f"--tokens must be a positive number like 300e9, not {tokens!r}")
    printed = parse_value(value, unit)
    quantity = resolve_quantity(quantity, printed, tokens)
    for tool in tools or ():
        adapters.get(tool)  # unknown tool: a UserError before anything runs
    spec = _resolve(model, model_file, input_shape, seq_len, trace=quantity == COMPUTE and batch is None)
    if batch is not None:
        spec = dataclasses.replace(spec, input_shape=(batch,) + tuple(spec.input_shape[1:]))
    shapes = _token_shapes(spec)
    if quantity == TRAIN_COMPUTE and shapes is None:
        why = "its configuration has no single width, depth and head count" if spec.token_model else \
            "it takes no token ids"
        raise UserError(f"--quantity train-compute needs a token model (hf:, preset:), whose N and D its "
                        f"conventions count; {spec.name!r} is not one ({why})")
    # the answer from the conventions: a token model's parameters and training compute come from its shapes and
    # counted parameter groups, another configuration-built model's parameters from the probe's count (no trace)
    counted = spec.config.get("n_params") if spec.config else None
    needs_ir = quantity == COMPUTE or (quantity == PARAMS and shapes is None and not counted)
    ir = _trace(spec) if needs_ir else None
    options = {**(options or {}), **({"tokens": tokens} if tokens is not None else {}),
               **({"n_params": counted} if counted and not needs_ir else {})}
    notes: list[str] = []
    measured = None
    if quantity == TRAIN_COMPUTE and (confirm if measure is None else measure):
        from .which_training import measured_candidate

        try:
            measured = measured_candidate(spec, float(tokens), float(printed.value))
            options["measured"] = measured
        except UserError as exc:
            notes.append(f"no measured training step: {exc}")
    elif quantity == TRAIN_COMPUTE and measure is None:
        notes.append("formulas only; --confirm (or --measure) ranks one measured training step beside them")
    result = explain_number(ir, printed, quantity, tolerance, records, options, shapes, spec.name)
    if records is None and quantity != TRAIN_COMPUTE and (tools is None or tools):
        ctx = Context(spec.name, ir, model_terms(ir) if ir is not None else None, quantity, None, options, shapes)
        running = run and (confirm or tools is not None)
        # (which tools can read this model at all is asked only before running them: it imports their packages)
        names = list(tools) if tools is not None else confirming_tools(result, ctx, spec if running else None)
        found, tool_notes = tool_records(spec, names, running, cache_dir, report_records,
                                         progress=_landing_printer(progress, ctx, printed, tolerance),
                                         quiet_missing=tools is None) if names else (pd.DataFrame(), [])
        if tools is None and not confirm:
            missing = [n for n in names if found.empty or n not in set(found["tool"])]
            if missing and run:
                tool_notes.append(f"conventions only; --confirm runs the tools that can land here: "
                                  f"{', '.join(missing)}")
        if not found.empty:
            result = explain_number(ir, printed, quantity, tolerance, found, options, shapes, spec.name)
        notes += tool_notes
    result.notes = notes + result.notes
    result.measured = measured
    return result


def confirming_tools(result: Result, ctx: Context, spec=None) -> list[str]:
    """The tools whose catalogued convention (conventions/catalogue, the table the diff engine explains their
    records with) can land in the candidate families: the families within the tolerance of the number, or the
    nearest one when none is. A compute convention lands in a family by how it counts the weighted layers (its
    Core on this model's terms); a parameter convention by the analytic count it equals on them. Without the
    terms (a token model answered from its shapes) a parameter convention cannot be evaluated: every tool with a
    catalogued parameter count may land. A tool that cannot read this model at all (no form of it, not
    installed: runner.precheck) is left out; so is every tool for training compute (tools count one forward)."""
    from . import adapters
    from .runner import Job, precheck

    if ctx.quantity == TRAIN_COMPUTE or not result.families:
        return []
    near = [f for f in result.families if f.best.match != OUTSIDE] or result.families[:1]
    keys = {f.key for f in near}
    analytic = [m.candidate for f in result.families for m in f.members if m.candidate.source in ANALYTIC]
    out = []
    for tool in adapters.TOOLS:
        if spec is not None and precheck(Job(tool, spec)) is not None:
            continue
        if _can_land(tool, adapters.get(tool).version(), ctx, keys, analytic):
            out.append(tool)
    return out


def _can_land(tool: str, version: str, ctx: Context, keys: set, analytic: list[Candidate]) -> bool:
    if ctx.terms is None:  # parameters from a token model's shapes: no per-kind terms to evaluate a convention on
        return ctx.quantity == PARAMS and any(e.tool == tool and _entry_quantity(e) == PARAMS
                                              for e in catalogue.CATALOGUE)
    for name, _, versions, counting, _ in catalogued_countings(ctx.quantity, ctx.terms.kinds):
        if name != tool or (versions and not catalogue.in_range(version, _bounds(versions))):
            continue
        if ctx.quantity == COMPUTE:
            core = core_of(counting, ctx.terms)
            if core.rule and core.family_key in keys:
                return True
        else:
            value = ctx.terms.value(counting)
            if any(c.value == value and (c.family, False) in keys for c in analytic):
                return True
    return False


def _landing_printer(progress: Optional[Callable], ctx: Context, printed: Printed, tolerance: float) \
        -> Optional[Callable]:
    """The runner's progress callback for confirming tools: as each tool finishes (or comes from the cache), one
    line with its totals and the family each lands in (`progress.note`; a plain callable gets the runner's call)."""
    if progress is None or not hasattr(progress, "note"):
        return progress

    def report(done: int, total: int, job, records, seconds: float, cached: bool = False) -> None:
        frame_ = _records_frame(records)
        cands = tool_totals(dataclasses.replace(ctx, records=frame_))
        if ctx.quantity == PARAMS:
            cands = _parameter_family(candidates(ctx) + cands)
            cands = [c for c in cands if c.source == TOOL]
        landed = []
        for c in cands:
            match, error = classify(c.value, printed, tolerance)
            closeness = match if match in (EXACT, AS_PRINTED) else f"{error:+.1%}"
            landed.append(f"{c.metric} {printed.show(c.value)} {closeness} [{_family_id(c.family_key)}]")
        took = "cached" if cached else f"{seconds:.1f} s"
        text = "; ".join(landed) if landed else f"no {ctx.quantity} total"
        progress.note(_clip(f"[{done}/{total}] {job.tool}, {took}: {text}"))

    return report


def _records_frame(records) -> pd.DataFrame:
    from .api import frame

    return frame(records)


def _clip(line: str, width: int = 119) -> str:
    return line if len(line) <= width else line[:width - 3] + "..."


class _CallableModule(type(os)):
    """`reconcile.which(model, value, ...)`: the module itself is the API function (it returns Result.frame())."""

    def __call__(self, model=None, value=None, **kwargs) -> pd.DataFrame:
        return which(model, value, **kwargs).frame()


sys.modules[__name__].__class__ = _CallableModule


# ------------------------------------------------------------------------------------------------ whole tables
TABLE_COLUMNS = ("model", "printed", "unit", "quantity", "tokens", "seq_len", "input_shape", "label", "source", "note")
MAX_TABLE_ROWS = 500


@dataclass
class TableRow:
    index: int  # 1-based row number of the CSV (the header is row 0)
    label: str
    model: str
    text: str  # the value as printed, with its unit
    result: Optional[Result] = None
    error: str = ""


@dataclass
class TableResult:
    path: str
    rows: list[TableRow]
    family_id: str  # the family that explains the most rows at their printed precision ("" if none does)
    family_name: str
    agree: list[int]  # row numbers that family explains at their printed precision
    disagree: list[tuple[int, str]]  # (row number, why): what the row's own verdict is instead

    def verdict(self) -> str:
        n = len([r for r in self.rows if r.result is not None])
        if not self.family_id:
            return f"{self.path}: no family explains any of its {n} rows at their printed precision"
        return (f"{self.path}: {len(self.agree)} of {n} rows are {self.family_name} at their printed precision "
                f"[{self.family_id}]")

    def lines(self) -> list[str]:
        out = [self.verdict()]
        if self.disagree:
            out.append(f"rows that disagree ({len(self.disagree)}):")
            out += [f"  row {i}: {why}" for i, why in self.disagree]
        out.append("per row:")
        for row in self.rows:
            out.append(f"  {row.index}. {row.label + ': ' if row.label else ''}"
                       f"{row.result.verdict() if row.result is not None else row.error}")
        return out

    def to_json(self) -> dict:
        return {"table": self.path, "family": self.family_id, "family_name": self.family_name,
                "verdict": self.verdict(), "agree": self.agree,
                "disagree": [{"row": i, "why": why} for i, why in self.disagree],
                "rows": [{"row": r.index, "label": r.label, "model": r.model, "printed": r.text,
                          "verdict": r.result.verdict() if r.result is not None else "", "error": r.error,
                          "family": r.result.top.id if r.result is not None and r.result.top else "",
                          "match": r.result.top.best.match if r.result is not None and r.result.top else ""}
                         for r in self.rows]}


def read_table(path: str) -> list[dict[str, str]]:
    """A table of printed numbers (CSV with a header): model, printed, and optionally unit, quantity, tokens,
    seq_len, input_shape, label (the row's name), source and note (kept, not read). Bad input is one line."""
    file = Path(path)
    if not file.is_file():
        raise UserError(f"--table: no such file {path}")
    try:
        with open(file, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip().lower() for h in (reader.fieldnames or [])]
            rows = []
            for i, row in enumerate(reader, 1):
                if i > MAX_TABLE_ROWS:
                    raise UserError(f"--table {path}: more than {MAX_TABLE_ROWS} rows")
                rows.append({k.strip().lower(): (v or "").strip() for k, v in row.items() if k is not None})
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"--table {path}: cannot read it as CSV ({type(exc).__name__})") from None
    missing = [c for c in ("model", "printed") if c not in header]
    if missing:
        raise UserError(f"--table {path}: no column {', '.join(missing)} (columns: model, printed, and optionally "
                        f"{', '.join(TABLE_COLUMNS[2:])})")
    unknown = [h for h in header if h and h not in TABLE_COLUMNS]
    if unknown:
        raise UserError(f"--table {path}: unknown column {', '.join(map(repr, unknown))} (columns: "
                        f"{', '.join(TABLE_COLUMNS)})")
    if not rows:
        raise UserError(f"--table {path}: no rows")
    return rows


def _row_number(text: str, what: str, row: int, cast=float):
    if not text:
        return None
    try:
        value = cast(float(text.replace(",", "").replace("_", "")))
    except ValueError:
        value = -1
    if not value > 0:
        raise UserError(f"row {row}: {what} must be a positive number, not {text!r}")
    return value


def which_table(path: str, tolerance: float = DEFAULT_TOLERANCE, tools: Optional[Sequence[str]] = (),
                run: bool = True, cache_dir: Optional[str] = None,
                report_records: Optional[Path] = DEFAULT_RECORDS, progress: Optional[Callable] = None,
                on_row: Optional[Callable[[TableRow], None]] = None, confirm: bool = False) -> TableResult:
    """A verdict per row of a paper's table and one for the table: the single family that explains the most rows
    at their printed precision (a paper uses one convention for a table), with the rows that disagree named.
    A row that cannot be read is named with its error and left out of the count. `tools` and `confirm` act per
    row as in `which`."""
    rows = []
    for i, raw in enumerate(read_table(path), 1):
        text = raw.get("printed", "") + (f" [{raw['unit']}]" if raw.get("unit") else "")
        row = TableRow(i, raw.get("label", ""), raw.get("model", ""), text)
        try:
            if not row.model or not raw.get("printed"):
                raise UserError("model and printed are needed")
            row.result = which(row.model, raw["printed"], raw.get("quantity") or None, tolerance, tools, run,
                               cache_dir=cache_dir, report_records=report_records, progress=progress,
                               input_shape=raw.get("input_shape") or None, unit=raw.get("unit") or None,
                               tokens=_row_number(raw.get("tokens", ""), "tokens", i),
                               seq_len=_row_number(raw.get("seq_len", ""), "seq_len", i, int), confirm=confirm)
        except UserError as exc:
            row.error = f"error: {exc}"
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return _table_verdict(path, rows)


def _family_of(result: Result, family_id: str) -> Optional[Family]:
    return next((f for f in result.families if f.id == family_id), None)


def _table_verdict(path: str, rows: list[TableRow]) -> TableResult:
    answered = [r for r in rows if r.result is not None]
    ids = list(dict.fromkeys(f.id for r in answered for f in r.result.families))

    def score(family_id: str) -> tuple:
        printed = within = top = 0
        gap = 0.0
        for r in answered:
            fam = _family_of(r.result, family_id)
            if fam is None:
                gap += 1.0
                continue
            printed += fam.best.match in (EXACT, AS_PRINTED)
            within += fam.best.match != OUTSIDE
            top += r.result.top is fam
            gap += min(abs(fam.best.relative_error), 1.0)
        return printed, within, top, -gap

    best = max(ids, key=score) if ids else ""
    if best and score(best)[0] == 0:
        best = ""
    agree, disagree, name = [], [], ""
    for r in rows:
        if r.result is None:
            disagree.append((r.index, f"{r.label + ', ' if r.label else ''}{r.model} {r.text}: {r.error}"))
            continue
        fam = _family_of(r.result, best) if best else None
        if fam is not None and fam.best.match in (EXACT, AS_PRINTED):
            agree.append(r.index)
            name = name or fam.name
            continue
        own = r.result.top
        theirs = f"{best} gives {r.result.printed.show(fam.best.candidate.value)} " \
                 f"({fam.best.relative_error:+.2%})" if fam is not None else f"no {best} family here"
        disagree.append((r.index, f"{r.label + ', ' if r.label else ''}{r.model} {r.text}: "
                                  f"{own.name if own else 'no candidate'} [{own.id if own else ''}] "
                                  f"{own.best.match if own else ''}; {theirs}"))
    return TableResult(path, rows, best, name, agree, disagree)


# ------------------------------------------------------------------------------------------------ published numbers
def published_numbers() -> list[dict[str, str]]:
    """reference_models/published.csv (the data lives with the reference models)."""
    import reference_models

    return reference_models.published_numbers()
