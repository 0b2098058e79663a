"""Transformer / LLM conventions: parameter counts, forward FLOPs per token and training compute, each a pure
function of the model's own shapes with the paper (section, equation or table) it comes from, and each written
in basis terms so a tool's number for a language model is explained the same way as a conv layer's.

Shapes (`Shapes`, from a `transformers` configuration by `shapes_from_config`): n_layer, d_model, n_heads, d_head
(d_attn = n_heads * d_head), n_kv_heads, d_ff (and whether the FFN is gated: SwiGLU has three d_model x d_ff
matrices, a GELU MLP two), n_vocab, n_ctx (the sequence length attended over: the input's seq_len), plus three
parameter counts read from the built model (all parameters; transformers' `num_parameters(exclude_embeddings=
True)`; whether the output projection is tied to the input embedding).

Basis terms of a language model, per token (names added here; conventions/terms.py has MACC, ATTN and SOFTMAX
with the same meaning per layer; the IR's MACC total of a causal LM equals (MACC + LOGITS) * tokens):
  MACC     multiply-accumulates of the blocks' weight matmuls (Q, K, V, attention output, FFN); biases excluded.
           Numerically the blocks' weight count: one MAC per weight per token.
  ATTN     multiply-accumulates of the two attention products, Q K^T and A V, over the full T x T matrix:
           2 * n_layer * T * d_attn per token. Causal attention needs half (the upper triangle is masked).
  SOFTMAX  attention-probability elements: n_layer * n_heads * T per token.
  LOGITS   multiply-accumulates of the final projection to the vocabulary: d_model * n_vocab (0 without LM head).
  EMBED    the input embedding seen as a one-hot matmul (Hoffmann et al. App. F counts it): n_vocab * d_model.
  BIAS     bias additions of the blocks' linear layers (the addmm bias that ptflops' aten backend counts):
           n_layer * (d_attn + 2 d_kv + d_model + (k-1) d_ff + d_model) for a model with biases, else 0.
  NORM     elements the LayerNorms / RMSNorms normalise per token: (2 n_layer + 1) d_model (GPT-2 and Llama: two
           per block and a final one; BERT: two per block and the embeddings' one).
  BIAS_CH  a bias added once per call instead of once per output row (DeepSpeed's and calflops' addmm formula
           adds the bias vector's size): the biases' parameter count once per forward pass, per token.
  POOLER   a pooler (BERT's dense layer on the first token): d_model^2 multiply-accumulates per sequence, so
           d_model^2 / T per token; its bias (d_model per sequence) is in BIAS and BIAS_CH.
Parameter terms (counts, not per token):
  P_BLOCK  the blocks' weight-matrix parameters (= MACC per token)
  P_EMBED  parameters of nn.Embedding modules (token, position, token-type embeddings; a tied output projection
           shares the token embedding and is counted here once)
  P_HEAD   an untied output projection's weights (Llama's lm_head), else 0
  P_OTHER  everything else: biases, norm scales and shifts, a pooler, routers (all parameters minus the three above)
  P_IDLE   a mixture of experts: the parameters of the experts a token is not routed to, (E - k)/E of the routed
           experts' parameters (k experts of E per token); 0 for a dense model
  P_ENCODER, P_DECODER  an encoder-decoder model's two stacks as the built model has them (each with the shared
           input embedding); 0 for a decoder-only or encoder-only model
A convention's value is computed from its own formula (the paper's, literally); its basis expression is how
that value decomposes; `residual` = value - basis, 0 when the formula's assumptions hold for this model (a
Kaplan or Megatron formula on a gated FFN, for instance, leaves a residual that says by how much it differs).
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Optional

MACC, ATTN, SOFTMAX, LOGITS, EMBED, BIAS = "MACC", "ATTN", "SOFTMAX", "LOGITS", "EMBED", "BIAS"
NORM, BIAS_CH, POOLER = "NORM", "BIAS_CH", "POOLER"
P_BLOCK, P_EMBED, P_HEAD, P_OTHER = "P_BLOCK", "P_EMBED", "P_HEAD", "P_OTHER"
P_IDLE, P_ENCODER, P_DECODER = "P_IDLE", "P_ENCODER", "P_DECODER"
COMPUTE_TERMS = (MACC, ATTN, SOFTMAX, LOGITS, EMBED, BIAS, NORM, BIAS_CH, POOLER)
PARAM_TERMS = (P_BLOCK, P_EMBED, P_HEAD, P_OTHER, P_IDLE, P_ENCODER, P_DECODER)
TERM_MEANINGS = {
    MACC: "blocks' weight-matmul multiply-accumulates per token (Q, K, V, out, FFN)",
    ATTN: "QK^T and AV multiply-accumulates per token over the full T x T matrix",
    SOFTMAX: "attention-probability elements per token (n_layer * n_heads * T)",
    LOGITS: "output-projection multiply-accumulates per token (d_model * n_vocab)",
    EMBED: "input embedding as a one-hot matmul, per token (n_vocab * d_model)",
    BIAS: "bias additions of the blocks' linear layers per token (their bias parameter count)",
    NORM: "normalised elements per token ((2 n_layer + 1) d_model: two norms per block and one more)",
    BIAS_CH: "bias additions counted once per forward call, not per token (BIAS / (batch * T) per token)",
    POOLER: "a BERT pooler's multiply-accumulates (d_model^2 once per sequence: d_model^2 / T per token)",
    P_BLOCK: "blocks' weight-matrix parameters",
    P_EMBED: "embedding-table parameters (token, position, type; a tied output projection once)",
    P_HEAD: "untied output-projection parameters",
    P_OTHER: "biases, norm parameters and anything else",
    P_IDLE: "experts a token does not use (a mixture of experts: (E - k) of E experts per layer)",
    P_ENCODER: "the encoder stack of an encoder-decoder model, its input embedding included",
    P_DECODER: "the decoder stack of an encoder-decoder model, its input embedding included",
}

PARAMS, FORWARD, TRAIN = "params", "forward FLOPs per token", "training FLOPs per token"


@dataclass(frozen=True)
class Shapes:
    n_layer: int
    d_model: int
    n_heads: int
    d_head: int
    d_ff: int
    n_vocab: int
    n_ctx: int  # the attended sequence length T (the input's seq_len)
    n_kv_heads: int = 0  # 0: as many as n_heads (no grouped-query attention)
    gated_ffn: bool = False  # SwiGLU / GeGLU: three d_model x d_ff matrices
    lm_head: bool = True  # the model ends in a projection to the vocabulary
    linear_bias: bool = True  # the blocks' linear layers have biases (GPT-2, BERT; not Llama)
    pooler: bool = False  # a dense + tanh pooler on the first token (BertModel)
    tied_head: bool = True  # that projection shares the token embedding's weights
    n_params: int = 0  # all parameters of the built model
    hf_non_embedding: int = 0  # transformers' num_parameters(exclude_embeddings=True)
    batch: int = 1
    encoder_decoder: bool = False  # n_layer encoder layers and n_decoder_layer decoder layers (with cross-attention)
    n_decoder_layer: int = 0
    n_experts: int = 0  # a mixture of experts: E routed experts per layer, k of them per token (0: dense)
    top_k: int = 0
    # counted on the built model (reconcile's hf probe, `parameter_groups`); 0 when not known
    p_output_untied: int = 0  # an output projection not tied to the input embedding
    p_experts: int = 0  # the routed experts' parameters, every layer
    p_encoder: int = 0
    p_decoder: int = 0

    @property
    def d_attn(self) -> int:
        return self.n_heads * self.d_head

    @property
    def d_kv(self) -> int:
        return (self.n_kv_heads or self.n_heads) * self.d_head

    @property
    def ffn_matrices(self) -> int:
        return 3 if self.gated_ffn else 2

    @property
    def p_embedding_tables(self) -> int:
        """nn.Embedding parameters (token, position, type): all minus transformers' exclude_embeddings count."""
        return self.n_params - self.hf_non_embedding if self.n_params and self.hf_non_embedding else \
            self.n_vocab * self.d_model

    @property
    def p_idle(self) -> int:
        """Experts a token does not use: (E - k)/E of the routed experts' parameters (counted, else formula)."""
        if not self.n_experts or not self.top_k:
            return 0
        experts = self.p_experts or self.n_layer * self.n_experts * self.ffn_matrices * self.d_model * self.d_ff
        return experts * (self.n_experts - self.top_k) // self.n_experts


def _first(config: dict, *keys, default=None):
    for key in keys:
        if config.get(key) is not None:
            return config[key]
    return default


_POOLED = {"bert", "roberta", "xlm-roberta", "camembert", "ernie", "megatron-bert"}  # bare models with a pooler


def shapes_from_config(config: dict, seq_len: int, batch: int = 1, n_params: int = 0, hf_non_embedding: int = 0,
                       lm_head: Optional[bool] = None) -> Shapes:
    """Shapes from a transformers configuration dict (GPT-2 names n_layer/n_embd/n_head/n_inner, the common
    num_hidden_layers/hidden_size/num_attention_heads/intermediate_size, T5's num_layers/num_heads/d_kv/d_ff and
    BART's encoder_layers/encoder_attention_heads/encoder_ffn_dim), with the parameter groups the hf probe counted
    (p_output_untied, p_experts, p_encoder, p_decoder). A configuration without a width, a depth or a head count
    is a ValueError naming what is missing."""
    def need(*keys):
        value = _first(config, *keys)
        if value is None or isinstance(value, (list, tuple, dict)):
            raise ValueError(f"{config.get('model_type', 'this')} configuration has no single {keys[0]} "
                             f"(looked for {', '.join(keys)})")
        return int(value)

    d_model = need("n_embd", "hidden_size", "d_model")
    n_heads = need("n_head", "num_attention_heads", "num_heads", "encoder_attention_heads")
    d_head = int(_first(config, "head_dim", "d_kv", default=0) or d_model // n_heads)
    act = str(_first(config, "hidden_act", "activation_function", "feed_forward_proj", default=""))
    model_type = str(config.get("model_type", ""))
    gated = model_type in ("llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "gemma", "gemma2", "olmo", "phi3") \
        or "glu" in act.lower() or act.lower().startswith("gated")
    d_ff = int(_first(config, "n_inner", "intermediate_size", "ffn_dim", "d_ff", "encoder_ffn_dim", default=0)
               or 4 * d_model)
    head = config.get("head", "causal-lm")
    encoder_decoder = bool(config.get("is_encoder_decoder"))
    n_layer = need("n_layer", "num_hidden_layers", "num_layers", "encoder_layers")
    n_decoder = int(_first(config, "num_decoder_layers", "decoder_layers", default=0) or n_layer) \
        if encoder_decoder else 0
    n_experts = int(_first(config, "num_local_experts", "num_experts", "n_routed_experts", default=0) or 0)
    top_k = int(_first(config, "num_experts_per_tok", "moe_topk", "top_k", default=0) or 0) if n_experts else 0
    return Shapes(n_layer=n_layer, d_model=d_model, n_heads=n_heads,
                  d_head=d_head, d_ff=d_ff, n_vocab=need("vocab_size"), n_ctx=int(seq_len),
                  n_kv_heads=int(_first(config, "num_key_value_heads", default=0) or 0), gated_ffn=gated,
                  lm_head=head in ("causal-lm", "masked-lm") if lm_head is None else lm_head,
                  tied_head=bool(config.get("tie_word_embeddings", True)), n_params=int(n_params),
                  linear_bias=bool(config.get("attention_bias", config.get("mlp_bias", not gated)))
                  and model_type != "t5",
                  pooler=head == "base" and model_type in _POOLED,
                  hf_non_embedding=int(hf_non_embedding), batch=int(batch), encoder_decoder=encoder_decoder,
                  n_decoder_layer=n_decoder, n_experts=n_experts, top_k=top_k,
                  p_output_untied=int(config.get("p_output_untied", 0) or 0),
                  p_experts=int(config.get("p_experts", 0) or 0), p_encoder=int(config.get("p_encoder", 0) or 0),
                  p_decoder=int(config.get("p_decoder", 0) or 0))


def parameter_groups(model, config) -> dict[str, int]:
    """What the parameter families need beyond the total, counted on a built `transformers` model (on the meta
    device: shapes only): an output projection not tied to the input embedding, the routed experts of a mixture of
    experts (parameters under an `experts` module, shared experts not), and an encoder-decoder's two stacks."""
    def count(params) -> int:
        seen, total = set(), 0
        for p in params:
            if id(p) not in seen:
                seen.add(id(p))
                total += p.numel()
        return total

    def call(name: str):
        method = getattr(model, name, None)
        try:  # vision models raise NotImplementedError: they have no token embedding
            return method() if callable(method) else None
        except (AttributeError, NotImplementedError, TypeError):
            return None

    out = {"p_output_untied": 0, "p_experts": 0, "p_encoder": 0, "p_decoder": 0}
    inputs, output = call("get_input_embeddings"), call("get_output_embeddings")
    if output is not None and getattr(output, "weight", None) is not None and \
            (inputs is None or output.weight is not getattr(inputs, "weight", None)):
        out["p_output_untied"] = count(output.parameters())
    out["p_experts"] = count(p for name, p in model.named_parameters()
                             if ".experts." in f".{name}" and "shared_expert" not in name)
    if getattr(config, "is_encoder_decoder", False):
        for key, getter in (("p_encoder", "get_encoder"), ("p_decoder", "get_decoder")):
            module = call(getter)
            out[key] = count(module.parameters()) if module is not None else 0
    return out


# ------------------------------------------------------------------------------------------------ basis terms
def terms(s: Shapes) -> dict[str, "int | Fraction"]:
    """The basis terms of one model at its sequence length: per-token compute terms and parameter terms."""
    attention = s.d_model * s.d_attn + 2 * s.d_model * s.d_kv + s.d_attn * s.d_model
    ffn = s.ffn_matrices * s.d_model * s.d_ff * max(s.n_experts, 1) + s.d_model * s.n_experts  # experts + router
    block = s.n_layer * (attention + ffn) + s.n_decoder_layer * (2 * attention + ffn)  # decoder: + cross-attention
    head = s.d_model * s.n_vocab if s.lm_head else 0
    p_head = head if s.lm_head and not s.tied_head else 0
    p_embed = s.n_params - s.hf_non_embedding if s.n_params else s.n_vocab * s.d_model
    p_other = (s.hf_non_embedding - block - p_head) if s.hf_non_embedding else 0
    # biases: q, k, v, attention out, the d_ff-wide FFN inputs (two if gated) and the FFN output
    block_bias = s.n_layer * (s.d_attn + 2 * s.d_kv + s.d_model + (s.ffn_matrices - 1) * s.d_ff + s.d_model) \
        if s.linear_bias else 0
    pooler_bias = s.d_model if s.pooler and s.linear_bias else 0  # on one row per sequence
    return {MACC: block, ATTN: 2 * s.n_layer * s.n_ctx * s.d_attn, SOFTMAX: s.n_layer * s.n_heads * s.n_ctx,
            LOGITS: head, EMBED: s.n_vocab * s.d_model, BIAS: block_bias + Fraction(pooler_bias, s.n_ctx),
            NORM: (2 * s.n_layer + 1) * s.d_model,
            BIAS_CH: Fraction(block_bias + pooler_bias, s.batch * s.n_ctx),  # every bias once per forward
            POOLER: Fraction(s.d_model * s.d_model, s.n_ctx) if s.pooler else 0,
            P_BLOCK: block, P_EMBED: p_embed, P_HEAD: p_head, P_OTHER: p_other, P_IDLE: s.p_idle,
            P_ENCODER: s.p_encoder, P_DECODER: s.p_decoder}


def evaluate(combo: dict[str, Fraction], values: dict[str, int]) -> Fraction:
    return sum((Fraction(c) * values.get(t, 0) for t, c in combo.items()), Fraction(0))


def format_combo(combo: dict[str, Fraction]) -> str:
    """{'MACC': 2, 'ATTN': Fraction(1, 2)} -> '2*MACC + 1/2*ATTN'."""
    parts = []
    for term, coef in combo.items():
        coef = Fraction(coef)
        if coef == 0:
            continue
        mag = abs(coef)
        text = f"{mag.numerator}" if mag.denominator == 1 else f"{mag.numerator}/{mag.denominator}"
        parts.append(("- " if coef < 0 else "+ ") + f"{text}*{term}")
    out = " ".join(parts)
    return (out[2:] if out.startswith("+ ") else "-" + out[2:]) if out else "0"


# ------------------------------------------------------------------------------------------------ conventions
def decoder_only(s: Shapes) -> bool:
    return not s.encoder_decoder


def any_model(s: Shapes) -> bool:
    return True


@dataclass(frozen=True)
class Convention:
    name: str
    quantity: str  # PARAMS | FORWARD | TRAIN (the last two per token)
    formula: str  # the paper's formula, in its own symbols
    citation: str
    value: Callable[[Shapes], Fraction]  # the formula, literally
    basis: Callable[[Shapes], dict[str, Fraction]]  # its expression in basis terms (may depend on the model)
    family: str = ""  # the family `reconcile which` ranks it in (F_* / T_* keys); "" for the forward conventions
    applies: Callable[[Shapes], bool] = decoder_only  # a formula for decoder-only shapes says nothing of others


# Families of parameter counts and of training compute: what `reconcile which` tells apart. Keys are constants;
# the label is what a verdict says; each convention below names its family and carries its own citation.
F_ALL, F_NON_EMBEDDING, F_EXCLUDE_EMBEDDINGS = "all", "non-embedding", "exclude-embeddings"
F_NO_OUTPUT, F_ACTIVE, F_ENCODER, F_DECODER = "no-output-embedding", "active", "encoder", "decoder"
T_6ND, T_6ND_NON_EMBEDDING, T_6ND_EXCLUDE = "6nd", "6nd-non-embedding", "6nd-exclude-embeddings"
T_6ND_NO_OUTPUT, T_6ND_ACTIVE, T_ENCODER_DECODER = "6nd-no-output-embedding", "6nd-active", "3nd-encoder-decoder"
T_KAPLAN_ATTENTION, T_CHINCHILLA, T_PALM = "6nd+attention", "3x-forward", "6nd+12lhqt"
T_MEGATRON, T_MEGATRON_RECOMPUTE = "megatron", "megatron-recompute"
T_MEASURED = "measured"  # not a formula: one training step traced (reconcile/which_training.py), times D
FAMILY_LABELS = {
    F_ALL: "all parameters",
    F_NON_EMBEDDING: "non-embedding parameters (no vocabulary, position or output embedding)",
    F_EXCLUDE_EMBEDDINGS: "parameters without the embedding tables (an untied output projection kept)",
    F_NO_OUTPUT: "parameters without the untied output embedding",
    F_ACTIVE: "active parameters per token (k of E experts)",
    F_ENCODER: "encoder parameters",
    F_DECODER: "decoder parameters",
    T_6ND: "6ND, N = all parameters",
    T_6ND_NON_EMBEDDING: "6ND, N = non-embedding parameters (Kaplan's 6N)",
    T_6ND_EXCLUDE: "6ND, N without the embedding tables (transformers' floating_point_ops)",
    T_6ND_NO_OUTPUT: "6ND, N without the untied output embedding",
    T_6ND_ACTIVE: "6ND, N = active parameters per token",
    T_ENCODER_DECODER: "6 (N/2) D: half the parameters active per token (encoder-decoder)",
    T_KAPLAN_ATTENTION: "6ND + attention: 3 x (2N + 2 n_layer n_ctx d_attn) per token",
    T_CHINCHILLA: "3 x forward FLOPs per token (Chinchilla App. F, embeddings and logits in)",
    T_PALM: "6ND + 12 L H Q T per token (PaLM App. B)",
    T_MEGATRON: "Megatron-LM, 3 passes (72 B s l h^2 (1 + s/6h + V/12lh))",
    T_MEGATRON_RECOMPUTE: "Megatron-LM with activation recomputation (96 B s l h^2 (...))",
    T_MEASURED: "measured forward + backward products (one training step traced), x D tokens",
}


@dataclass(frozen=True)
class Evaluated:
    name: str
    quantity: str
    value: Fraction
    basis: dict[str, Fraction]
    residual: Fraction
    formula: str
    citation: str
    family: str = ""

    @property
    def basis_text(self) -> str:
        return format_combo(self.basis)


def kaplan_n(s: Shapes) -> int:
    """Kaplan et al. 2020 §2.1 eq. 2.1: N ~= 2 d_model n_layer (2 d_attn + d_ff), non-embedding, no biases."""
    return 2 * s.d_model * s.n_layer * (2 * s.d_attn + s.d_ff)


def _f(x) -> Fraction:
    return Fraction(x)


def _chinchilla_forward(s: Shapes) -> Fraction:
    """Hoffmann et al. 2022 Appendix F, one forward pass over seq_len tokens, divided by seq_len."""
    seq, kh = s.n_ctx, s.d_attn  # key_size * num_heads
    embeddings = 2 * seq * s.n_vocab * s.d_model
    attention = (2 * 3 * seq * s.d_model * kh  # key, query, value projections
                 + 2 * seq * seq * kh  # K @ Q logits
                 + 3 * s.n_heads * seq * seq  # softmax
                 + 2 * seq * seq * kh  # softmax @ query reductions
                 + 2 * seq * kh * s.d_model)  # final linear
    dense = 2 * seq * (s.d_model * s.d_ff + s.d_model * s.d_ff)
    logits = 2 * seq * s.d_model * s.n_vocab
    return Fraction(embeddings + s.n_layer * (attention + dense) + logits, seq)


def _chinchilla_basis(s: Shapes) -> dict[str, Fraction]:
    return {EMBED: _f(2), MACC: _f(2), ATTN: _f(2), SOFTMAX: _f(3), LOGITS: _f(2)}


def _megatron(s: Shapes, layers_factor: int, vocab_den: int) -> Fraction:
    """Narayanan et al. 2021 §5.1 eq. (3): F = 96 B s l h^2 (1 + s/6h + V/16lh) per iteration with full
    activation recomputation; without recomputation 72 B s l h^2 (1 + s/6h + V/12lh) (the same derivation, App.
    A of Korthikanti et al. 2022). Per token: divided by B * s."""
    h, l, seq, v = s.d_model, s.n_layer, s.n_ctx, s.n_vocab
    return layers_factor * l * h * h * (1 + Fraction(seq, 6 * h) + Fraction(v, vocab_den * l * h))


def _all_params(s: Shapes) -> dict[str, Fraction]:
    return {P_BLOCK: _f(1), P_EMBED: _f(1), P_HEAD: _f(1), P_OTHER: _f(1)}


CONVENTIONS: tuple[Convention, ...] = (
    # ---------------------------------------------------------------- parameters
    Convention("all parameters", PARAMS, "sum of every parameter tensor (torch parameters(), tied weights once)",
               "the built model (torch.nn.Module.parameters); Keras' 'Trainable params' (no parameter of these "
               "models is frozen)", lambda s: _f(s.n_params), _all_params, F_ALL, any_model),
    Convention("non-embedding parameters (counted)", PARAMS,
               "all parameters - vocabulary and position embeddings - an untied output embedding",
               "Kaplan et al. 2020, 'Scaling Laws for Neural Language Models', §1.3 ('N - the number of model "
               "parameters, excluding all vocabulary and positional embeddings'); Biderman et al. 2023 (Pythia) "
               "print this count as 'Non-Embedding Params'",
               lambda s: _f(s.n_params - s.p_embedding_tables - (s.p_output_untied or terms(s)[P_HEAD])),
               lambda s: {P_BLOCK: _f(1), P_OTHER: _f(1)}, F_NON_EMBEDDING, any_model),
    Convention("Kaplan N (non-embedding)", PARAMS, "N = 2 d_model n_layer (2 d_attn + d_ff)",
               "Kaplan et al. 2020, 'Scaling Laws for Neural Language Models', §2.1 eq. (2.1) and Table 1",
               lambda s: _f(kaplan_n(s)), lambda s: {P_BLOCK: _f(1)}, F_NON_EMBEDDING),
    Convention("transformers non-embedding parameters", PARAMS, "num_parameters(exclude_embeddings=True)",
               "transformers 5.24.0, transformers/modeling_utils.py ModuleUtilsMixin.num_parameters "
               "(drops every nn.Embedding weight)", lambda s: _f(s.hf_non_embedding),
               lambda s: {P_BLOCK: _f(1), P_HEAD: _f(1), P_OTHER: _f(1)}, F_EXCLUDE_EMBEDDINGS, any_model),
    Convention("parameters without the untied output embedding", PARAMS, "all parameters - lm_head (untied)",
               "the count of the same model with its output projection tied to the input embedding (weight tying: "
               "Press & Wolf 2017, 'Using the Output Embedding to Improve Language Models')",
               lambda s: _f(s.n_params - (s.p_output_untied or terms(s)[P_HEAD])),
               lambda s: {P_BLOCK: _f(1), P_EMBED: _f(1), P_OTHER: _f(1)}, F_NO_OUTPUT,
               lambda s: bool(s.p_output_untied or terms(s)[P_HEAD])),
    Convention("active parameters per token", PARAMS, "all parameters - (E - k)/E x routed experts' parameters",
               "Jiang et al. 2024, 'Mixtral of Experts', abstract ('each token has access to 47B parameters, but "
               "only uses 13B active parameters during inference')",
               lambda s: _f(s.n_params - s.p_idle),
               lambda s: {**_all_params(s), P_IDLE: _f(-1)}, F_ACTIVE, lambda s: bool(s.n_experts)),
    Convention("encoder parameters", PARAMS, "parameters of the encoder stack (model.get_encoder())",
               "the encoder half of an encoder-decoder; Brown et al. 2020 Table D.1: 'since T5 uses an "
               "encoder-decoder model, only half of the parameters are active for each token'",
               lambda s: _f(s.p_encoder), lambda s: {P_ENCODER: _f(1)}, F_ENCODER, lambda s: s.encoder_decoder),
    Convention("decoder parameters", PARAMS, "parameters of the decoder stack (model.get_decoder())",
               "the decoder half of an encoder-decoder; Brown et al. 2020 Table D.1",
               lambda s: _f(s.p_decoder), lambda s: {P_DECODER: _f(1)}, F_DECODER, lambda s: s.encoder_decoder),
    # ---------------------------------------------------------------- forward FLOPs per token
    Convention("Kaplan 2N", FORWARD, "C_forward ~= 2N",
               "Kaplan et al. 2020 §2.1 and Table 1 (attention context term dropped)",
               lambda s: _f(2 * kaplan_n(s)), lambda s: {MACC: _f(2)}),
    Convention("Kaplan 2N + 2 n_layer n_ctx d_attn", FORWARD, "C_forward = 2N + 2 n_layer n_ctx d_attn",
               "Kaplan et al. 2020 Table 1 (the 'Attention: Mask' row; equals causal attention at 2 FLOPs per MAC)",
               lambda s: _f(2 * kaplan_n(s) + 2 * s.n_layer * s.n_ctx * s.d_attn),
               lambda s: {MACC: _f(2), ATTN: _f(1)}),
    Convention("full attention, 2 FLOPs per MAC", FORWARD, "2 (MACC + QK^T + AV over T x T)",
               "matmul at 2 FLOPs per multiply-accumulate, every query attending to every key (bidirectional; "
               "what an eager or FlopCounterMode count of QK^T and AV sees)",
               lambda s: _f(2 * terms(s)[MACC] + 2 * terms(s)[ATTN]), lambda s: {MACC: _f(2), ATTN: _f(2)}),
    Convention("causal attention, 2 FLOPs per MAC", FORWARD, "2 (MACC + (QK^T + AV) / 2)",
               "as above with the masked half of QK^T and AV not computed (a causal decoder; Kaplan Table 1's "
               "attention term)", lambda s: _f(2 * terms(s)[MACC] + terms(s)[ATTN]),
               lambda s: {MACC: _f(2), ATTN: _f(1)}),
    Convention("full attention with logits, 2 FLOPs per MAC", FORWARD, "2 (MACC + ATTN + LOGITS)",
               "every matmul of a causal LM's forward at 2 FLOPs per MAC, the full T x T attention and the "
               "output projection included (torch FlopCounterMode's mm/bmm formulas)",
               lambda s: _f(2 * (terms(s)[MACC] + terms(s)[ATTN] + terms(s)[LOGITS])),
               lambda s: {MACC: _f(2), ATTN: _f(2), LOGITS: _f(2)}),
    Convention("Chinchilla forward (App. F)", FORWARD,
               "embeddings 2 seq vocab d_model + n_layer (QKV 2*3 seq d_model (key_size heads) + logits 2 seq^2 "
               "(key_size heads) + softmax 3 heads seq^2 + reductions 2 seq^2 (key_size heads) + final linear 2 seq "
               "(key_size heads) d_model + dense 2 seq (2 d_model ffw_size)) + final logits 2 seq d_model vocab",
               "Hoffmann et al. 2022, 'Training Compute-Optimal Large Language Models', Appendix F",
               _chinchilla_forward, _chinchilla_basis),
    # ---------------------------------------------------------------- training FLOPs per token
    Convention("Kaplan 6N", TRAIN, "C ~= 6N per token (backward = 2x forward)",
               "Kaplan et al. 2020 §2.1 (C = 6NBS, N non-embedding)", lambda s: _f(6 * kaplan_n(s)),
               lambda s: {MACC: _f(6)}, T_6ND_NON_EMBEDDING),
    Convention("6ND (N = non-embedding parameters, counted)", TRAIN, "C = 6 N D, N without embeddings",
               "Kaplan et al. 2020 §1.3 (C ~= 6NBS, 'the total non-embedding training compute') on the counted N",
               lambda s: 6 * by_name("non-embedding parameters (counted)").value(s),
               lambda s: {P_BLOCK: _f(6), P_OTHER: _f(6)}, T_6ND_NON_EMBEDDING, any_model),
    Convention("6ND (N = all parameters)", TRAIN, "C = 6 N D, N every parameter",
               "Brown et al. 2020 Appendix D, Table D.1 (6 flops per param per token: GPT-3 175B 3.14e23 FLOPs for "
               "300B tokens); Hoffmann et al. 2022 §3", lambda s: _f(6 * s.n_params),
               lambda s: {k: 6 * v for k, v in _all_params(s).items()}, T_6ND, any_model),
    Convention("6ND (N without the untied output embedding)", TRAIN, "C = 6 (N - lm_head) D",
               "6ND with N the count of the same model with tied input and output embeddings",
               lambda s: 6 * by_name("parameters without the untied output embedding").value(s),
               lambda s: {P_BLOCK: _f(6), P_EMBED: _f(6), P_OTHER: _f(6)}, T_6ND_NO_OUTPUT,
               lambda s: bool(s.p_output_untied or terms(s)[P_HEAD])),
    Convention("6ND (N = active parameters)", TRAIN, "C = 6 N_active D",
               "Brown et al. 2020 Table D.1's 'Frac of params active for each token' applied to a mixture of "
               "experts (Jiang et al. 2024: 13B of 47B parameters active per token)",
               lambda s: 6 * by_name("active parameters per token").value(s),
               lambda s: {**{k: 6 * v for k, v in _all_params(s).items()}, P_IDLE: _f(-6)}, T_6ND_ACTIVE,
               lambda s: bool(s.n_experts)),
    Convention("6 (N/2) D (encoder-decoder)", TRAIN, "C = 3 x 2 x (N/2) D: half the parameters active per token",
               "Brown et al. 2020 Appendix D, Table D.1 (T5 rows: 'since T5 uses an encoder-decoder model, only half "
               "of the parameters are active for each token'; 3 flops per param per token)",
               lambda s: _f(3 * s.n_params), lambda s: {k: 3 * v for k, v in _all_params(s).items()},
               T_ENCODER_DECODER, lambda s: s.encoder_decoder),
    Convention("Kaplan 3 x (2N + 2 n_layer n_ctx d_attn)", TRAIN, "C = 6N + 6 n_layer n_ctx d_attn per token",
               "Kaplan et al. 2020 §2.1 (training = 3x forward) with Table 1's attention term",
               lambda s: _f(6 * kaplan_n(s) + 6 * s.n_layer * s.n_ctx * s.d_attn),
               lambda s: {MACC: _f(6), ATTN: _f(3)}, T_KAPLAN_ATTENTION),
    Convention("Chinchilla 3 x forward (App. F)", TRAIN, "backward = 2x forward: 3 x the App. F forward",
               "Hoffmann et al. 2022 Appendix F", lambda s: 3 * _chinchilla_forward(s),
               lambda s: {k: 3 * v for k, v in _chinchilla_basis(s).items()}, T_CHINCHILLA),
    Convention("PaLM 6N + 12 L H Q T", TRAIN, "6N + 12 L H Q T per token, N all parameters (PaLM ties input and "
               "output embeddings, so N includes the output projection)",
               "Chowdhery et al. 2022, 'PaLM', Appendix B (model FLOPs utilisation)",
               lambda s: _f(6 * s.n_params + 12 * s.n_layer * s.n_heads * s.d_head * s.n_ctx),
               lambda s: {**{k: 6 * v for k, v in _all_params(s).items()}, ATTN: _f(6)}, T_PALM),
    Convention("Megatron-LM without recomputation", TRAIN, "72 B s l h^2 (1 + s/6h + V/12lh) / (B s)",
               "Narayanan et al. 2021, 'Efficient Large-Scale Language Model Training on GPU Clusters Using "
               "Megatron-LM', §5.1 eq. (3) derivation with 3 passes instead of 4 (= Korthikanti et al. 2022 "
               "App. A model FLOPs)", lambda s: _megatron(s, 72, 12),
               lambda s: {MACC: _f(6), ATTN: _f(6), LOGITS: _f(6)}, T_MEGATRON),
    Convention("Megatron-LM with activation recomputation", TRAIN, "96 B s l h^2 (1 + s/6h + V/16lh) / (B s)",
               "Narayanan et al. 2021 §5.1 eq. (3) (full recomputation: an extra forward pass of the layers)",
               lambda s: _megatron(s, 96, 16), lambda s: {MACC: _f(8), ATTN: _f(8), LOGITS: _f(6)},
               T_MEGATRON_RECOMPUTE),
    Convention("transformers floating_point_ops", TRAIN, "6 x tokens x num_parameters(exclude_embeddings=True)",
               "transformers 5.24.0, transformers/trainer.py Trainer.floating_point_ops",
               lambda s: _f(6 * s.hf_non_embedding), lambda s: {P_BLOCK: _f(6), P_HEAD: _f(6), P_OTHER: _f(6)},
               T_6ND_EXCLUDE, any_model),
)


def by_name(name: str) -> Convention:
    for c in CONVENTIONS:
        if c.name == name:
            return c
    raise KeyError(name)


def evaluate_all(s: Shapes, quantity: Optional[str] = None) -> list[Evaluated]:
    """Every convention that applies to these shapes (the decoder-only formulas not to an encoder-decoder)."""
    values = terms(s)
    out = []
    for c in CONVENTIONS:
        if (quantity is not None and c.quantity != quantity) or not c.applies(s):
            continue
        value, basis = Fraction(c.value(s)), c.basis(s)
        out.append(Evaluated(c.name, c.quantity, value, basis, value - evaluate(basis, values), c.formula,
                             c.citation, c.family))
    return out


# ------------------------------------------------------------------------------------------------ which
@dataclass(frozen=True)
class Ranked:
    name: str
    value: float  # total training FLOPs for the tokens given
    relative_error: float  # (value - printed) / printed
    basis: str
    citation: str


def rank_training_compute(s: Shapes, printed: float, tokens: float) -> list[Ranked]:
    """Every training-compute convention times `tokens`, closest to `printed` first."""
    out = []
    for e in evaluate_all(s, TRAIN):
        total = float(e.value) * tokens
        out.append(Ranked(e.name, total, (total - printed) / printed, f"tokens x ({e.basis_text})", e.citation))
    return sorted(out, key=lambda r: (abs(r.relative_error), r.name))


# ------------------------------------------------------------------------------------------------ tools
def explain_total(total: float, s: Shapes, tokens: int) -> Optional[dict[str, Fraction]]:
    """The simplest combination of per-token compute terms, times `tokens`, that equals a tool's total exactly
    (fewest non-zero terms, then smallest coefficients, then terms earlier in the list); None if none does.
    LOGITS and EMBED are always equal (d_model * n_vocab): a number cannot tell them apart, and LOGITS (a matmul
    every counter sees) comes first."""
    import itertools
    import math
    import numbers

    half = Fraction(1, 2)
    options = ((MACC, (0, half, 1, 2)), (ATTN, (0, half, 1, 2)), (LOGITS, (0, half, 1, 2)), (BIAS, (0, 1)),
               (BIAS_CH, (0, 1)), (SOFTMAX, (0, 1, 2, 3)), (NORM, (0, 1, 2, 4, 5)),
               (POOLER, (0, 1, 2) if s.pooler else (0,)), (EMBED, (0, 1, 2)))
    names = [t for t, _ in options]
    values = terms(s)
    target = Fraction(total)
    # The ~46,000 combinations are summed in integers: scaled by 2 (the half coefficients) x the values' common
    # denominator, every coefficient x value is a whole number. With whole `tokens` that integer test is exact and
    # only its matches are evaluated as Fractions; otherwise every combination is.
    whole = isinstance(tokens, numbers.Integral) and all(isinstance(values.get(t, 0), (int, Fraction)) for t in names)
    scale = 2 * math.lcm(*(Fraction(values.get(t, 0)).denominator for t in names)) if whole else 1
    scaled = [[int(Fraction(c) * values.get(t, 0) * scale) if whole else 0 for c in coefficients]
              for t, coefficients in options]
    per_sum, wanted = (int(tokens) * target.denominator, target.numerator * scale) if whole else (0, 0)  # sum x per_sum
    best = None
    for combo, parts in zip(itertools.product(*(c for _, c in options)), itertools.product(*scaled)):
        if whole and sum(parts) * per_sum != wanted:
            continue
        picked = {t: Fraction(c) for t, c in zip(names, combo) if c}
        if evaluate(picked, values) * tokens == target:
            key = (len(picked), sum(picked.values()), [names.index(t) for t in picked])
            if best is None or key < best[0]:
                best = (key, picked)
    return best[1] if best else None
