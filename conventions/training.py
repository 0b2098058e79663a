"""Training compute: the measured forward + backward (reconcile/frontends/torch_training.py) as data, the training
FLOPs formulas of the training frameworks (MFU formulas), and how far every training convention is from the
measured figure and which terms make the difference. Pure Python: no framework imports.

The measured figure, in basis terms (conventions/terms.py TRAINING_TERMS, model totals in multiply-accumulates):
    training FLOPs = 2 * (MACC + ATTN + MACC_DGRAD + ATTN_DGRAD + MACC_WGRAD + MACC_RECOMPUTE + ATTN_RECOMPUTE)
at 2 FLOPs per multiply-accumulate. EMBED_WGRAD (an embedding's scatter-add, one addition per element) is not a
product and is reported beside it, not in it.

Conventions compared with it:
  - every training convention of conventions/llm.py (6N, 6ND, Kaplan, Chinchilla 3 x forward, PaLM, Megatron-LM
    paper formulas, transformers floating_point_ops), per token, on a token model;
  - the MFU formulas of training code (MFU_CONVENTIONS below: nanoGPT, torchtitan, Megatron-LM's code), per token;
  - two generic rules that apply to any model (GENERIC): "3 x forward" (backward = 2 x forward: Chinchilla App. F,
    calflops' and DeepSpeed's factor) and "6N per sample/token" (N all parameters).
A convention's difference from the measured figure is split into components (blocks' weight matmuls, attention,
logits, embeddings, pooler, biases and norms, input gradients autograd skips) so the reader sees which terms
make it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Optional

from . import llm
from . import terms as T

# ------------------------------------------------------------------------------------------------ the trace
@dataclass
class TrainingLayer:
    """One layer's products in the three passes (multiply-accumulates), plus an embedding's scatter-add."""

    name: str  # the module's qualified name; "<forward>" for code outside every module
    kind: str  # "linear", "conv", "attention" (activation x activation products), "embedding", "matmul"
    block: str = ""  # the block (recomputation unit) it belongs to, "" if none
    fwd_macc: int = 0  # forward products against a weight
    fwd_attn: int = 0  # forward products between two activations
    dgrad_macc: int = 0  # input-gradient products of the weighted products
    dgrad_attn: int = 0  # gradient products of the activation products
    wgrad_macc: int = 0  # weight-gradient products
    recompute_macc: int = 0  # forward products repeated by recomputation (accounted)
    recompute_attn: int = 0
    embed_wgrad: int = 0  # scatter-add additions of an embedding's weight gradient
    trainable: bool = True  # every parameter its products read requires grad
    params: int = 0  # parameters its products (or lookup) read

    @property
    def forward(self) -> int:
        return self.fwd_macc + self.fwd_attn

    @property
    def backward(self) -> int:
        return self.dgrad_macc + self.dgrad_attn + self.wgrad_macc + self.recompute_macc + self.recompute_attn

    @property
    def ratio(self) -> Optional[float]:
        """backward / forward products (None when the layer has no forward products)."""
        return self.backward / self.forward if self.forward else None

    @property
    def skipped_dgrad(self) -> int:
        """Input-gradient products autograd did not need (the first layer, a layer after frozen ones only)."""
        return max(0, self.fwd_macc - self.dgrad_macc)

    @property
    def skipped_wgrad(self) -> int:
        return max(0, self.fwd_macc - self.wgrad_macc)

    def why(self) -> str:
        parts = []
        if self.kind == "embedding":
            parts.append(f"lookup, no products; weight gradient: scatter-add of {self.embed_wgrad:,} elements"
                         if self.embed_wgrad else "lookup, no products; frozen: no weight gradient")
        elif self.fwd_macc and not self.wgrad_macc:
            parts.append("frozen: no weight gradient")
        elif 0 < self.wgrad_macc < self.fwd_macc:
            parts.append("weight gradient for part of its products only")
        if self.fwd_macc and not self.dgrad_macc:
            parts.append("its input needs no gradient: no input gradient")
        elif 0 < self.dgrad_macc < self.fwd_macc:
            parts.append("input gradient for part of its products only")
        if self.fwd_attn and not self.dgrad_attn:
            parts.append("its inputs need no gradient: no gradient products")
        if self.recompute_macc or self.recompute_attn:
            parts.append("forward recomputed")
        return "; ".join(parts)


@dataclass
class TrainingTrace:
    name: str
    input_shape: tuple[int, ...]
    device: str
    loss: str
    recompute: str
    frozen_patterns: tuple[str, ...]
    frozen_params: int  # parameters with requires_grad False during the trace
    trainable_params: int
    layers: list[TrainingLayer]
    blocks: tuple[str, ...] = ()
    unattributed: dict = field(default_factory=dict)  # backward product op -> products no forward op explains
    notes: tuple[str, ...] = ()
    token_model: bool = False

    def total(self, attr: str) -> int:
        return sum(getattr(layer, attr) for layer in self.layers)

    @property
    def forward(self) -> int:
        return self.total("forward")

    @property
    def backward(self) -> int:
        return self.total("backward") + sum(self.unattributed.values())

    @property
    def products(self) -> int:
        """Multiply-accumulates of one training step (forward + backward)."""
        return self.forward + self.backward

    @property
    def ratio(self) -> float:
        """backward / forward over the whole model."""
        return self.backward / self.forward if self.forward else float("nan")

    @property
    def units(self) -> int:
        """What the figures are per: tokens (batch x seq_len) of a token model, else samples (the batch)."""
        if self.token_model and len(self.input_shape) >= 2:
            return self.input_shape[0] * self.input_shape[1]
        return self.input_shape[0] if self.input_shape else 1

    @property
    def unit(self) -> str:
        return "token" if self.token_model else "sample"

    def terms(self) -> dict[str, int]:
        """Model totals in basis terms (conventions/terms.py TRAINING_TERMS)."""
        return {T.MACC: self.total("fwd_macc"), T.ATTN: self.total("fwd_attn"),
                T.MACC_DGRAD: self.total("dgrad_macc"), T.ATTN_DGRAD: self.total("dgrad_attn"),
                T.MACC_WGRAD: self.total("wgrad_macc"), T.MACC_RECOMPUTE: self.total("recompute_macc"),
                T.ATTN_RECOMPUTE: self.total("recompute_attn"), T.EMBED_WGRAD: self.total("embed_wgrad")}

    @property
    def flops(self) -> int:
        """Training FLOPs of the step: MEASURED (2 per multiply-accumulate)."""
        return int(T.evaluate(MEASURED, self.terms())) + 2 * sum(self.unattributed.values())

    @property
    def flops_per_unit(self) -> Fraction:
        return Fraction(self.flops, self.units)


# The measured training FLOPs in basis terms: 2 FLOPs per multiply-accumulate of every pass.
MEASURED = {T.MACC: 2, T.ATTN: 2, T.MACC_DGRAD: 2, T.ATTN_DGRAD: 2, T.MACC_WGRAD: 2, T.MACC_RECOMPUTE: 2,
            T.ATTN_RECOMPUTE: 2}
MEASURED_NAME = "measured forward + backward"


# ------------------------------------------------------------------------------------------------ MFU formulas
@dataclass(frozen=True)
class Context:
    """What the per-token formulas read: the LLM shapes and the learned position-embedding table's size."""

    shapes: llm.Shapes
    position_params: int = 0  # a learned absolute position table (GPT-2 wpe, BERT position_embeddings); 0 for RoPE


P_POS = "P_POS"  # learned position-embedding parameters (part of llm.P_EMBED); nanoGPT leaves them out of N


def position_params(trace: "TrainingTrace") -> int:
    """Parameters of the learned absolute position tables the traced model looked up: embedding layers named
    `wpe` or `*position*` (GPT-2 `transformer.wpe`, BERT `embeddings.position_embeddings`); 0 for a rotary model,
    which has none."""
    def is_position(name: str) -> bool:
        last = name.rsplit(".", 1)[-1].lower()
        return last == "wpe" or "position" in last
    return sum(layer.params for layer in trace.layers if layer.kind == "embedding" and is_position(layer.name))


def _lhqt(s: llm.Shapes) -> int:
    return s.n_layer * s.n_heads * s.d_head * s.n_ctx


def _megatron_code(s: llm.Shapes) -> Fraction:
    """megatron/training/training.py num_floating_point_operations(args, batch_size) / (batch_size * seq_length)."""
    h, l, seq = s.d_model, s.n_layer, s.n_ctx
    q_ratio = Fraction(s.d_attn, h)
    groups = Fraction(s.n_kv_heads or s.n_heads, s.n_heads)
    gated = Fraction(3, 2) if s.gated_ffn else 1
    # its logit term is there whether or not the model has an LM head (BertModel has none: a residual then)
    return 12 * l * h * h * ((1 + groups + Fraction(seq, h)) * q_ratio + Fraction(s.d_ff, h) * gated
                             + Fraction(s.n_vocab, 2 * l * h))


@dataclass(frozen=True)
class TrainConvention:
    name: str
    formula: str
    citation: str
    value: Callable[[Context], Fraction]  # per token, the formula literally
    basis: Callable[[Context], dict[str, Fraction]]  # llm per-token terms (and P_POS)


_F = Fraction
MFU_CONVENTIONS: tuple[TrainConvention, ...] = (
    TrainConvention(
        "nanoGPT estimate_mfu", "6N + 12 L H Q T per token, N = get_num_params(): every parameter but the position "
        "table (the tied token table stays: it is the output layer)",
        "karpathy/nanoGPT model.py GPT.estimate_mfu and GPT.get_num_params(non_embedding=True) (PaLM App. B; T is "
        "cfg.block_size there, the sequence length here)",
        lambda c: _F(6 * (c.shapes.n_params - c.position_params) + 12 * _lhqt(c.shapes)),
        lambda c: {llm.P_BLOCK: _F(6), llm.P_EMBED: _F(6), llm.P_HEAD: _F(6), llm.P_OTHER: _F(6), P_POS: _F(-6),
                   llm.ATTN: _F(6)}),
    TrainConvention(
        "torchtitan get_num_flop_per_token", "6 (N - N_embedding) + 12 l h q t per token",
        "pytorch/torchtitan torchtitan/models/utils.py get_dense_model_nparams_and_flops (formerly "
        "torchtitan/utils.py get_num_flop_per_token): nn.Embedding parameters left out; 12 = 2 forward + 4 backward "
        "attention matmuls x 2, flash attention's recomputation not counted, causal sparsity not counted",
        lambda c: _F(6 * c.shapes.hf_non_embedding + 12 * _lhqt(c.shapes)),
        lambda c: {llm.P_BLOCK: _F(6), llm.P_HEAD: _F(6), llm.P_OTHER: _F(6), llm.ATTN: _F(6)}),
    TrainConvention(
        "Megatron-LM num_floating_point_operations",
        "12 B s L h^2 ((1 + g/a + s/h) q/h + f/h x (3/2 if SwiGLU) + V / 2Lh) / (B s)",
        "NVIDIA/Megatron-LM megatron/training/training.py num_floating_point_operations (3 GEMMs per weight: "
        "forward, wgrad, dgrad; GQA and SwiGLU handled; no recomputation; no biases)",
        lambda c: _megatron_code(c.shapes),
        lambda c: {llm.MACC: _F(6), llm.ATTN: _F(6), llm.LOGITS: _F(6)}),
)

# Components a difference is split into; a per-token llm term belongs to one of them.
BLOCKS, ATTENTION, LOGITS, EMBEDDINGS, POOLER, OTHER = ("blocks' weight matmuls", "attention", "logits",
                                                         "embeddings", "pooler", "biases and norms")
_COMPONENT = {llm.MACC: BLOCKS, llm.P_BLOCK: BLOCKS, llm.ATTN: ATTENTION, llm.SOFTMAX: ATTENTION,
              llm.LOGITS: LOGITS, llm.P_HEAD: LOGITS, llm.EMBED: EMBEDDINGS, llm.P_EMBED: EMBEDDINGS,
              P_POS: EMBEDDINGS, llm.POOLER: POOLER, llm.NORM: OTHER, llm.BIAS: OTHER, llm.BIAS_CH: OTHER,
              llm.P_OTHER: OTHER}


def context_terms(c: Context) -> dict[str, Fraction]:
    return {**llm.terms(c.shapes), P_POS: c.position_params}


def component_values(basis: dict[str, Fraction], c: Context) -> dict[str, Fraction]:
    """A per-token basis expression, evaluated and summed by component. A tied output projection is counted in
    P_EMBED: that part of P_EMBED is the logits' matmul, so it goes to LOGITS."""
    values = context_terms(c)
    out: dict[str, Fraction] = {}
    for term, coef in basis.items():
        value = Fraction(coef) * values.get(term, 0)
        if term == llm.P_EMBED and c.shapes.lm_head and c.shapes.tied_head:
            head = Fraction(coef) * c.shapes.d_model * c.shapes.n_vocab
            out[LOGITS] = out.get(LOGITS, 0) + head
            value -= head
        out[_COMPONENT.get(term, OTHER)] = out.get(_COMPONENT.get(term, OTHER), 0) + value
    return out


def measured_components(trace: TrainingTrace, c: Optional[Context] = None) -> dict[str, Fraction]:
    """The measured training FLOPs per unit (token or sample), by component: weighted layers inside blocks,
    attention products, and each weighted layer outside the blocks (the LM head as `logits`, BERT's pooler as
    `pooler` when the shapes say so, else under its own name)."""
    out: dict[str, Fraction] = {}
    units = trace.units
    logits = c.shapes.d_model * c.shapes.n_vocab if c is not None and c.shapes.lm_head else None
    pooler = llm.terms(c.shapes)[llm.POOLER] if c is not None and c.shapes.pooler else None
    for layer in trace.layers:
        attn = 2 * (layer.fwd_attn + layer.dgrad_attn + layer.recompute_attn)
        weighted = 2 * (layer.fwd_macc + layer.dgrad_macc + layer.wgrad_macc + layer.recompute_macc)
        if attn:
            out[ATTENTION] = out.get(ATTENTION, 0) + Fraction(attn, units)
        if not weighted:
            continue
        per_unit_fwd = Fraction(layer.fwd_macc, units)
        if layer.block:
            name = BLOCKS
        elif logits is not None and per_unit_fwd == logits:
            name = LOGITS
        elif pooler and per_unit_fwd == pooler:
            name = POOLER
        else:
            name = layer.name
        out[name] = out.get(name, 0) + Fraction(weighted, units)
    if trace.unattributed:
        out["unattributed backward products"] = Fraction(2 * sum(trace.unattributed.values()), units)
    return out


@dataclass(frozen=True)
class Comparison:
    name: str
    value: Fraction  # per unit
    measured: Fraction  # per unit
    basis: str
    citation: str
    differences: tuple[tuple[str, Fraction], ...]  # (component, convention - measured) per unit, largest first
    residual: Fraction = Fraction(0)  # the formula's value minus its basis expression

    @property
    def relative(self) -> float:
        return float((self.value - self.measured) / self.measured) if self.measured else float("nan")

    def sentence(self) -> str:
        where = "above" if self.value > self.measured else "below"
        head = (f"{self.name}, which here is {abs(self.relative):.1%} {where} the measured forward+backward"
                if self.value != self.measured else f"{self.name}, equal to the measured forward+backward")
        parts = [f"{comp} {float(diff):+,.0f}" for comp, diff in self.differences if diff]
        return head + (f" ({'; '.join(parts)} per unit)" if parts else "")


RESIDUAL = "formula terms beyond its basis on this model (residual)"


def _differences(conv: dict[str, Fraction], measured: dict[str, Fraction],
                 residual: Fraction = Fraction(0)) -> tuple[tuple[str, Fraction], ...]:
    """(component, convention - measured), largest first; a formula's residual (what it counts that its basis
    terms are 0 for on this model: Megatron-LM's logits on a model without an LM head) is its own component."""
    keys = list(dict.fromkeys([*conv, *measured]))
    diffs = [(k, conv.get(k, 0) - measured.get(k, 0)) for k in keys] + [(RESIDUAL, Fraction(residual))]
    return tuple(sorted((d for d in diffs if d[1]), key=lambda d: -abs(d[1])))


def skipped_gradients(trace: TrainingTrace) -> tuple[Fraction, Fraction]:
    """(input-gradient, weight-gradient) products per unit autograd did not compute, in FLOPs."""
    return (Fraction(2 * sum(layer.skipped_dgrad for layer in trace.layers), trace.units),
            Fraction(2 * sum(layer.skipped_wgrad for layer in trace.layers), trace.units))


def generic_comparisons(trace: TrainingTrace, n_params: int) -> list[Comparison]:
    """The two rules that need no transformer shapes, against the measured figure (per unit)."""
    measured = trace.flops_per_unit
    forward = Fraction(2 * trace.forward, trace.units)
    skipped_d, skipped_w = skipped_gradients(trace)
    recompute = Fraction(2 * (trace.total("recompute_macc") + trace.total("recompute_attn")), trace.units)
    # 3 x forward assumes every product needs an input and a weight gradient (an attention product needs two
    # input gradients, which is the same count): it differs by what autograd skipped and by recomputation
    three = 3 * forward
    diffs = tuple((k, v) for k, v in (("input gradients autograd skips (first layer, frozen)", skipped_d),
                                      ("weight gradients of frozen layers", skipped_w),
                                      ("recomputation", -recompute)) if v)
    residual = three - measured - sum((v for _, v in diffs), Fraction(0))
    if residual:
        diffs += (("other", residual),)
    out = [Comparison("3 x forward (backward = 2 x forward)", three, measured, "6*MACC + 6*ATTN",
                      "Hoffmann et al. 2022 App. F (backward = 2x forward); calflops' compute_bp_factor 2.0; "
                      "DeepSpeed's bwd_factor 2 (+ recompute_fwd_factor)", diffs)]
    six_n = Fraction(6 * n_params, 1)
    out.append(Comparison(f"6N per {trace.unit} (N = all parameters)", six_n, measured,
                          "6*(P_BLOCK + P_EMBED + P_HEAD + P_OTHER)", "Kaplan et al. 2020 §2.1 (C = 6N per token); "
                          "for a network that reuses its weights over positions (a CNN) N is not its compute",
                          (("6N - measured", six_n - measured),) if six_n != measured else ()))
    return out


def llm_comparisons(trace: TrainingTrace, c: Context) -> list[Comparison]:
    """Every per-token training convention (conventions/llm.py TRAIN and MFU_CONVENTIONS) against the measured
    figure per token, with its difference by component."""
    measured = trace.flops_per_unit
    measured_parts = measured_components(trace, c)
    values = context_terms(c)
    out = []
    for e in llm.evaluate_all(c.shapes, llm.TRAIN):
        out.append(Comparison(e.name, e.value, measured, e.basis_text, e.citation,
                              _differences(component_values(e.basis, c), measured_parts, e.residual), e.residual))
    for conv in MFU_CONVENTIONS:
        value, basis = Fraction(conv.value(c)), conv.basis(c)
        residual = value - sum((Fraction(coef) * values.get(t, 0) for t, coef in basis.items()), Fraction(0))
        out.append(Comparison(conv.name, value, measured, llm.format_combo(basis), conv.citation,
                              _differences(component_values(basis, c), measured_parts, residual), residual))
    return out


def check_forward(trace: TrainingTrace, c: Context) -> Fraction:
    """Measured forward products per token minus the llm terms' MACC + ATTN + LOGITS + POOLER (0 when the shapes
    describe the traced model: the conservation check before any comparison is trusted)."""
    t = llm.terms(c.shapes)
    return Fraction(trace.forward, trace.units) - (t[llm.MACC] + t[llm.ATTN] + t[llm.LOGITS] + t[llm.POOLER])


# ------------------------------------------------------------------------------------------------ counters
@dataclass(frozen=True)
class CounterConvention:
    """How a tool that reports training FLOPs builds its number (a catalogue entry, cited from its source):
    either a combination of the measured step's training terms (`combo`), or `factor` x the tool's own forward
    count (which the run's catalogue explains layer by layer)."""

    tool: str
    metric: str
    says: str
    source: str
    combo: tuple[tuple[str, int], ...] = ()
    factor: int = 0
    versions: tuple[str, str] = ("", "")


COUNTER_CONVENTIONS: tuple[CounterConvention, ...] = (
    CounterConvention(
        "torch_flop_counter", "FLOP [fwd+bwd]",
        "every registered aten op of forward and backward at 2 FLOPs per multiply-accumulate (mm, addmm, bmm, "
        "baddbmm, convolution, convolution_backward, the fused attention kernels and their backward); what "
        "Lightning's measure_flops(model, forward_fn, loss_fn) returns",
        "torch/utils/flop_counter.py FlopCounterMode, flop_registry (mm_flop, addmm_flop, bmm_flop, "
        "conv_backward_flop, sdpa_backward_flop); Lightning-AI/pytorch-lightning "
        "src/lightning/fabric/utilities/throughput.py measure_flops", tuple(MEASURED.items()), 0, ("2.1", "")),
    CounterConvention(
        "calflops", "FLOPs (include_backPropagation=True)",
        "its forward count times 1 + compute_bp_factor (2.0): backward = 2 x forward, whatever is frozen or needs "
        "no gradient", "calflops/flops_counter.py calculate_flops (flops * (1 + compute_bp_factor))", (), 3,
        ("0.3", "0.4")),
    CounterConvention(
        "deepspeed", "flops (profile open over forward + backward)",
        "its forward count only: the profiler patches torch functionals, which the backward (autograd's C++ engine) "
        "never calls; an engine's print_model_profile prints training throughput as (3 + recompute_fwd_factor) x it",
        "deepspeed/profiling/flops_profiler/profiler.py FlopsProfiler.start_profile (_patch_functionals) and "
        "print_model_profile (bwd_factor = 2 + self.recompute_fwd_factor)", (), 1, ("0.19", "0.20")),
)


def counter_convention(tool: str) -> CounterConvention:
    for entry in COUNTER_CONVENTIONS:
        if entry.tool == tool:
            return entry
    raise KeyError(tool)
