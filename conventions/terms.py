"""Basis terms: the per-layer quantities every tool's number is decomposed into.

Each term is an exact integer computed from the layer's shapes alone (pure functions, one per layer kind,
registered in a table as torch/utils/flop_counter.py does with `register_flop_formula`). A tool's per-layer
value is then explained as a small integer combination of these, e.g. thop's conv = 1*MACC, the document's
conv = 2*MACC + 1*BIAS.

Compute terms (counts over the whole batch):
  MACC    multiply-accumulates of conv / linear / matmul / attention projections / recurrent gates
  BIAS    bias additions (one per output element of a layer with a bias)
  OUT     output elements
  IN      input elements (all inputs)
  WINDOW  kernel_area * OUT, the element reads of a pooling window
  ATTN    multiply-accumulates of products between two activations: attention's Q K^T and A V (in an
          nn.MultiheadAttention, an SDPA call, an einsum or a plain matmul), which module hooks never see
  ATTN_CAUSAL  the part of ATTN a causal mask keeps (query i sees keys 0..i): the "causal half" convention
  SOFTMAX elements of the attention probability matrix
  ROWS    rows a layer normalises: of the attention probability matrix (batch x heads x queries; a softmax
          over a row of L costs (3L-1) in some tools, i.e. 3*SOFTMAX - ROWS), or the vectors a LayerNorm
          normalises (OUT / last dimension; TF counts its epsilon add and rsqrt per row)
  BIAS_CH bias additions counted once per output channel instead of once per output element (Netscope's later
          analyzer adds `Cout` to a conv's count, not `Cout*H*W`)
Parameter terms:
  WEIGHTS      weight parameters (the ones the layer reads, where the front end records them: `read_params`)
  BIAS_PARAMS  bias parameters
  TIED         parameters the layer shares with an earlier one (a tied LM head, a module called again): a
               tool listing `named_parameters()` counts them once, under the first name
Training terms (a measured forward + backward, reconcile/frontends/torch_training.py; model totals, kept apart
from COMPUTE_TERMS because they come from a training trace, not from one layer's shapes):
  MACC_DGRAD      multiply-accumulates of the input-gradient pass of weighted layers (grad x weight^T); 0 for a
                  layer whose input needs no gradient (the first layer, a layer after frozen ones only)
  ATTN_DGRAD      multiply-accumulates of the gradients of the activation products (2 x ATTN: both factors of
                  QK^T and of AV need one)
  MACC_WGRAD      multiply-accumulates of the weight-gradient pass (input^T x grad); 0 for frozen weights
  MACC_RECOMPUTE  forward MACC repeated by activation recomputation
  ATTN_RECOMPUTE  forward ATTN repeated by activation recomputation
  EMBED_WGRAD     elements an embedding's weight gradient scatter-adds (one addition each; not a product)
Terms of graph objects that are not layers (the TF profiler's unfrozen graph), both quantities:
  INPUT_VAR    elements of the model input held as a Variable (the document's TF1 setup)
  SCALAR       one scalar op (e.g. the (max - min) of a uniform initialiser)
"""
from __future__ import annotations

from typing import Callable

from .ir import (ACT, ADD, ATTENTION, BN, CONCAT, CONV, EINSUM, ELEMENTWISE, EMBEDDING, GAP, INTERPOLATE,
                 LAYER_NORM, LINEAR, MATMUL, MUL, NO_MACC_CONVENTION, NORM, PARAMETER, POOL_AVG, POOL_MAX,
                 REDUCE_MEAN, RNN, SDPA, SOFTMAX, UNKNOWN, UNSUPPORTED_OP, Layer, numel)

MACC, BIAS, OUT, IN, WINDOW, ATTN, SOFTMAX_TERM, BIAS_CH, ROWS = ("MACC", "BIAS", "OUT", "IN", "WINDOW", "ATTN",
                                                                  "SOFTMAX", "BIAS_CH", "ROWS")
ATTN_CAUSAL = "ATTN_CAUSAL"
WEIGHTS, BIAS_PARAMS = "WEIGHTS", "BIAS_PARAMS"
TIED = "TIED"  # parameters this layer shares with an earlier one (a tied LM head, a module called again)
INPUT_VAR, SCALAR = "INPUT_VAR", "SCALAR"
MACC_DGRAD, ATTN_DGRAD, MACC_WGRAD = "MACC_DGRAD", "ATTN_DGRAD", "MACC_WGRAD"
MACC_RECOMPUTE, ATTN_RECOMPUTE, EMBED_WGRAD = "MACC_RECOMPUTE", "ATTN_RECOMPUTE", "EMBED_WGRAD"

COMPUTE_TERMS = (MACC, BIAS, OUT, IN, WINDOW, ATTN, SOFTMAX_TERM, BIAS_CH, ROWS, ATTN_CAUSAL)
PARAM_TERMS = (WEIGHTS, BIAS_PARAMS, TIED)
GRAPH_TERMS = (INPUT_VAR, SCALAR)
TRAINING_TERMS = (MACC, ATTN, MACC_DGRAD, ATTN_DGRAD, MACC_WGRAD, MACC_RECOMPUTE, ATTN_RECOMPUTE, EMBED_WGRAD)

TERM_MEANINGS = {
    MACC: "multiply-accumulates",
    BIAS: "bias additions",
    OUT: "output elements",
    IN: "input elements",
    WINDOW: "kernel area x output elements",
    ATTN: "activation-by-activation multiply-accumulates (attention's QK^T and AV)",
    ATTN_CAUSAL: "attention multiply-accumulates a causal mask keeps",
    SOFTMAX_TERM: "attention-probability elements",
    BIAS_CH: "bias additions once per output channel",
    ROWS: "normalised rows (attention or LayerNorm)",
    WEIGHTS: "weight parameters",
    BIAS_PARAMS: "bias parameters",
    TIED: "parameters shared with an earlier layer",
    INPUT_VAR: "input elements held as a Variable",
    SCALAR: "one scalar op",
    MACC_DGRAD: "input-gradient multiply-accumulates of weighted layers",
    ATTN_DGRAD: "gradient multiply-accumulates of the activation products",
    MACC_WGRAD: "weight-gradient multiply-accumulates",
    MACC_RECOMPUTE: "forward multiply-accumulates repeated by recomputation",
    ATTN_RECOMPUTE: "forward activation products repeated by recomputation",
    EMBED_WGRAD: "embedding weight-gradient scatter-add elements",
}

_TERMS: dict[str, Callable[[Layer], dict[str, int]]] = {}


def register_terms(*kinds: str):
    def wrap(fn: Callable[[Layer], dict[str, int]]):
        for kind in kinds:
            _TERMS[kind] = fn
        return fn
    return wrap


def _common(layer: Layer) -> dict[str, int]:
    return {OUT: layer.out_elements, IN: layer.in_elements}


def conv_weights(layer: Layer) -> int:
    c_in, c_out = layer.input_shape[1], layer.output_shape[1]
    return layer.kernel_area * (c_in // layer.groups) * c_out


def _params_read(layer: Layer, weights: int, bias_params: int) -> tuple[int, int]:
    """(WEIGHTS, BIAS_PARAMS): the parameters the layer reads where the front end recorded them (`read_params`,
    shared ones included: a weight-normed conv reads `weight_g` and `weight_v`, not a kernel-shaped weight), else
    the document's shape formula."""
    read = layer.attr("read_params")
    if read is None:
        return weights, bias_params
    bias_params = min(bias_params, read)
    return read - bias_params, bias_params


@register_terms(CONV)
def conv_terms(layer: Layer) -> dict[str, int]:
    c_out = layer.output_shape[1]
    weights = conv_weights(layer)
    if layer.attr("transposed"):  # each input position is multiplied by the whole kernel slice it scatters
        positions = numel(layer.input_shape) // layer.input_shape[1]  # N * H_in * W_in
    else:
        positions = numel(layer.output_shape) // c_out  # N * H_out * W_out
    weight_params, bias_params = _params_read(layer, weights, c_out if layer.bias else 0)
    return {**_common(layer), MACC: weights * positions, BIAS: layer.out_elements if layer.bias else 0,
            BIAS_CH: c_out if layer.bias else 0, WEIGHTS: weight_params, BIAS_PARAMS: bias_params}


@register_terms(LINEAR)
def linear_terms(layer: Layer) -> dict[str, int]:
    n_in, n_out = layer.input_shape[-1], layer.output_shape[-1]
    rows = layer.out_elements // n_out  # batch x tokens: a Linear on (N, L, n_in) does L rows per sample
    weight_params, bias_params = _params_read(layer, n_in * n_out, n_out if layer.bias else 0)
    return {**_common(layer), MACC: n_in * n_out * rows, BIAS: layer.out_elements if layer.bias else 0,
            BIAS_CH: n_out if layer.bias else 0, WEIGHTS: weight_params, BIAS_PARAMS: bias_params}


@register_terms(RNN)
def rnn_terms(layer: Layer) -> dict[str, int]:
    """nn.RNN / GRU / LSTM: every row (step x batch) of every layer and direction multiplies its input by W_ih
    (gates*H x in) and the previous hidden state by W_hh (gates*H x H_out), plus W_hr (P x H) with projections;
    gates 4 (LSTM), 3 (GRU), 1 (RNN). Two bias adds (b_ih, b_hh) per gate unit and row."""
    gates, hidden, proj = layer.attr("gates"), layer.attr("hidden_size"), layer.attr("proj_size", 0)
    n_layers, directions, n_in = layer.attr("num_layers", 1), layer.attr("directions", 1), layer.attr("input_size")
    h_out = proj or hidden
    rows = numel(layer.input_shape) // n_in  # (T, B, in), (B, T, in), (T, in), packed (sum of batch sizes, in)
    per_row = sum(directions * (gates * hidden * ((n_in if index == 0 else directions * h_out) + h_out)
                                + hidden * proj) for index in range(n_layers))
    units = n_layers * directions * gates * hidden
    weight_params, bias_params = _params_read(layer, per_row, 2 * units if layer.bias else 0)
    return {**_common(layer), MACC: rows * per_row, BIAS: 2 * rows * units if layer.bias else 0,
            WEIGHTS: weight_params, BIAS_PARAMS: bias_params}


@register_terms(POOL_MAX, POOL_AVG)
def pool_terms(layer: Layer) -> dict[str, int]:
    return {**_common(layer), WINDOW: layer.kernel_area * layer.out_elements}


def products(layer: Layer) -> int:
    """Multiply-accumulates of a matmul / einsum: the front end records the count from the aten op's operand
    shapes (`products`); a plain 2-operand matmul without it is output elements x the contracted dimension."""
    recorded = layer.attr("products")
    return recorded if recorded is not None else layer.out_elements * layer.input_shapes[0][-1]


@register_terms(MATMUL, EINSUM)
def matmul_terms(layer: Layer) -> dict[str, int]:
    # Against a weight it is a layer's MACC; between two activations (attention scores, A V) it is ATTN, the term
    # a transformer paper's "attention FLOPs" and Kaplan et al.'s 2 n_layer n_ctx d_attn count.
    n = products(layer)
    weighted = layer.attr("operand") == "weight"
    bias_adds = layer.out_elements if layer.bias else 0
    fused = dict(layer.attr("fused", ()))  # a fused attention kernel: projections (MACC) and QK^T + AV (ATTN)
    if fused:
        return {**_common(layer), MACC: fused["weighted"], ATTN: fused["activation"], BIAS: bias_adds,
                WEIGHTS: layer.params}
    return {**_common(layer), MACC: n if weighted else 0, ATTN: 0 if weighted else n, BIAS: bias_adds,
            WEIGHTS: layer.params - layer.attr("bias_params", 0), BIAS_PARAMS: layer.attr("bias_params", 0)}


@register_terms(SDPA)
def sdpa_terms(layer: Layer) -> dict[str, int]:
    # q (..., L_q, E), k (..., L_k, E), v (..., L_k, E_v): Q K^T is rows x L_k x E, A V is rows x L_k x E_v.
    q, k, v = layer.input_shapes[:3]
    rows, l_q, l_k = numel(q[:-1]), q[-2], k[-2]
    per_pair = q[-1] + v[-1]
    causal = 0
    if layer.attr("causal"):  # query i attends to keys 0 .. i + (L_k - L_q) (torch's bottom-right alignment)
        offset = l_k - l_q
        kept = sum(min(l_k, max(0, i + 1 + offset)) for i in range(l_q))
        causal = numel(q[:-2]) * kept * per_pair
    return {**_common(layer), ATTN: rows * l_k * per_pair, ATTN_CAUSAL: causal, SOFTMAX_TERM: rows * l_k,
            ROWS: rows}


@register_terms(ATTENTION)
def attention_terms(layer: Layer) -> dict[str, int]:
    # nn.MultiheadAttention: q/k/v projections, Q K^T per head, softmax, A V, out projection.
    embed = layer.attr("embed_dim")
    kdim, vdim = layer.attr("kdim", embed), layer.attr("vdim", embed)
    heads = layer.attr("num_heads")
    batch, q_len, kv_len = layer.attr("batch", layer.batch), layer.attr("q_len"), layer.attr("kv_len")
    proj = batch * (q_len * embed * embed + kv_len * kdim * embed + kv_len * vdim * embed + q_len * embed * embed)
    bias_adds = batch * embed * (2 * q_len + 2 * kv_len) if layer.bias else 0
    read = layer.attr("read_params", layer.params)
    return {**_common(layer), MACC: proj, BIAS: bias_adds, ATTN: 2 * batch * q_len * kv_len * embed,
            SOFTMAX_TERM: batch * heads * q_len * kv_len, ROWS: batch * heads * q_len,
            WEIGHTS: read - (4 * embed if layer.bias else 0), BIAS_PARAMS: 4 * embed if layer.bias else 0}


@register_terms(BN, LAYER_NORM)
def norm_terms(layer: Layer) -> dict[str, int]:
    affine = layer.attr("read_params", layer.params)  # a norm module called again reads its weights again (TIED)
    rows = layer.out_elements // layer.output_shape[-1] if layer.kind == LAYER_NORM and layer.output_shape else 0
    return {**_common(layer), ROWS: rows, WEIGHTS: affine // 2, BIAS_PARAMS: affine - affine // 2}


@register_terms(ACT, ADD, MUL, SOFTMAX, CONCAT, EMBEDDING, NORM, REDUCE_MEAN, INTERPOLATE, ELEMENTWISE, UNKNOWN,
                UNSUPPORTED_OP, NO_MACC_CONVENTION)
def elementwise_terms(layer: Layer) -> dict[str, int]:
    values = {**_common(layer), WEIGHTS: layer.attr("read_params", layer.params)}
    if layer.kind == NORM and layer.output_shape:
        values[ROWS] = layer.out_elements // layer.output_shape[-1]
    return values


@register_terms(PARAMETER)
def parameter_terms(layer: Layer) -> dict[str, int]:
    return {WEIGHTS: layer.params}


@register_terms(GAP)
def gap_terms(layer: Layer) -> dict[str, int]:
    return {MACC: layer.attr("macc", 0), WEIGHTS: layer.params}


def terms(layer: Layer) -> dict[str, int]:
    """All basis terms of one layer; absent terms are 0 for that layer."""
    values = _TERMS[layer.kind](layer)
    values[TIED] = layer.attr("shared_params", 0)
    return {t: values.get(t, 0) for t in COMPUTE_TERMS + PARAM_TERMS}


def variable_terms(weights: int = 0, input_elements: int = 0) -> dict[str, int]:
    """Terms of a graph variable's initialiser ops: a layer kernel's weights, or the input Variable."""
    return {**{t: 0 for t in COMPUTE_TERMS + PARAM_TERMS}, WEIGHTS: weights, INPUT_VAR: input_elements, SCALAR: 1}


def format_combo(combo: dict[str, int]) -> str:
    """{"MACC": 2, "BIAS": 1} -> "2*MACC + 1*BIAS"; {} -> "0"."""
    parts = []
    for term, coef in combo.items():
        if coef == 0:
            continue
        sign = "-" if coef < 0 else "+"
        parts.append(f"{sign} {abs(coef)}*{term}")
    text = " ".join(parts)
    return (text[2:] if text.startswith("+ ") else "-" + text[2:]) if text else "0"


def evaluate(combo: dict[str, int], values: dict[str, int]) -> int:
    return sum(coef * values.get(term, 0) for term, coef in combo.items())
