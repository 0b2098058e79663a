"""LLM conventions (conventions/llm.py) against hand arithmetic from the cited papers. Pure Python: no torch."""
from fractions import Fraction

import pytest

from conventions import llm

# GPT-3 175B, Brown et al. 2020 Table 2.1: 96 layers, d_model 12288, 96 heads of 128, n_ctx 2048, vocab 50257.
# Parameter counts as the built GPT2Config model has them (tests/test_specs.py checks the build gives these):
# all = 174,604,259,328; transformers' non-embedding = all - 50257*12288 (wte) - 2048*12288 (wpe).
GPT3 = llm.Shapes(n_layer=96, d_model=12288, n_heads=96, d_head=128, d_ff=4 * 12288, n_vocab=50257, n_ctx=2048,
                  n_params=174_604_259_328, hf_non_embedding=174_604_259_328 - 50257 * 12288 - 2048 * 12288)
# GPT-2 small (hf:gpt2) at T = 1024: 124,439,808 parameters, non-embedding 124,439,808 - 50257*768 - 1024*768.
GPT2 = llm.Shapes(n_layer=12, d_model=768, n_heads=12, d_head=64, d_ff=3072, n_vocab=50257, n_ctx=1024,
                  n_params=124_439_808, hf_non_embedding=124_439_808 - 50257 * 768 - 1024 * 768)


def value(shapes, name):
    return llm.by_name(name).value(shapes)


def test_kaplan_n_gpt3():
    # Kaplan §2.1: N = 2 d_model n_layer (2 d_attn + d_ff) = 2 * 12288 * 96 * (2*12288 + 49152) = 12 * 96 * 12288^2
    assert value(GPT3, "Kaplan N (non-embedding)") == 12 * 96 * 12288 ** 2 == 173_946_175_488


def test_6nd_gpt3_is_the_papers_3_14e23():
    # Brown et al. App. D: 6 * 174.6e9 params * 300e9 tokens = 3.14e23 FLOPs
    total = value(GPT3, "6ND (N = all parameters)") * 300 * 10**9
    assert total == 6 * 174_604_259_328 * 300 * 10**9
    assert round(float(total) / 1e23, 2) == 3.14
    # Kaplan's non-embedding N gives 3.13e23: the two N's differ by the embeddings (617.6M + 25.2M)
    assert round(float(value(GPT3, "Kaplan 6N") * 300 * 10**9) / 1e23, 2) == 3.13


def test_which_ranks_6nd_first_for_gpt3():
    ranked = llm.rank_training_compute(GPT3, 3.14e23, 300e9)
    assert ranked[0].name == "6ND (N = all parameters)"
    assert abs(ranked[0].relative_error) < 0.001  # 3.1429e23 vs 3.14e23


def test_forward_per_token_gpt2():
    n = 12 * 12 * 768 ** 2  # Kaplan N of GPT-2 small: 84,934,656
    attn = 2 * 12 * 1024 * 768  # Kaplan Table 1 attention term 2 n_layer n_ctx d_attn
    assert value(GPT2, "Kaplan 2N") == 2 * n
    assert value(GPT2, "Kaplan 2N + 2 n_layer n_ctx d_attn") == 2 * n + attn
    # full attention: QK^T and AV each 1024 keys x 768 MACs per token per layer, 2 FLOPs per MAC
    full = 2 * n + 2 * (2 * 12 * 1024 * 768)
    assert value(GPT2, "full attention, 2 FLOPs per MAC") == full
    # causal: the masked half of both products not computed
    assert value(GPT2, "causal attention, 2 FLOPs per MAC") == full - 2 * 12 * 1024 * 768
    assert value(GPT2, "full attention with logits, 2 FLOPs per MAC") == full + 2 * 768 * 50257 == 284_812_800


def test_chinchilla_appendix_f_by_hand():
    # A tiny model so every App. F line can be written out: seq 5, vocab 10, d_model 8, 2 heads of key size 4,
    # ffw_size 32, 2 layers.
    s = llm.Shapes(n_layer=2, d_model=8, n_heads=2, d_head=4, d_ff=32, n_vocab=10, n_ctx=5)
    embeddings = 2 * 5 * 10 * 8
    qkv = 2 * 3 * 5 * 8 * (4 * 2)
    logits_kq = 2 * 5 * 5 * (4 * 2)
    softmax = 3 * 2 * 5 * 5
    reductions = 2 * 5 * 5 * (4 * 2)
    final_linear = 2 * 5 * (4 * 2) * 8
    dense = 2 * 5 * (8 * 32 + 8 * 32)
    final_logits = 2 * 5 * 8 * 10
    forward = embeddings + 2 * (qkv + logits_kq + softmax + reductions + final_linear + dense) + final_logits
    assert value(s, "Chinchilla forward (App. F)") == Fraction(forward, 5)
    assert value(s, "Chinchilla 3 x forward (App. F)") == Fraction(3 * forward, 5)  # backward = 2x forward


def test_palm_appendix_b():
    # PaLM 540B (Chowdhery et al. Table 1): 118 layers, 48 heads, head size 256, seq 2048; N = 540.35e9 here.
    s = llm.Shapes(n_layer=118, d_model=18432, n_heads=48, d_head=256, d_ff=73728, n_vocab=256000, n_ctx=2048,
                   n_params=540_350_000_000)
    assert value(s, "PaLM 6N + 12 L H Q T") == 6 * 540_350_000_000 + 12 * 118 * 48 * 256 * 2048


def test_megatron_formulas_per_iteration():
    # Narayanan et al. 2021 §5.1: F = 96 B s l h^2 (1 + s/6h + V/16lh); their GPT-3 setting: B 1536, s 2048,
    # l 96, h 12288, V 51200. Per token x (B s) must give the per-iteration number.
    s = llm.Shapes(n_layer=96, d_model=12288, n_heads=96, d_head=128, d_ff=49152, n_vocab=51200, n_ctx=2048)
    b, seq, l, h, v = 1536, 2048, 96, 12288, 51200
    with_recompute = 96 * b * seq * l * h**2 * (1 + Fraction(seq, 6 * h) + Fraction(v, 16 * l * h))
    without = 72 * b * seq * l * h**2 * (1 + Fraction(seq, 6 * h) + Fraction(v, 12 * l * h))
    assert value(s, "Megatron-LM with activation recomputation") * b * seq == with_recompute
    assert value(s, "Megatron-LM without recomputation") * b * seq == without
    assert round(float(with_recompute) / 1e18, 1) == 4.5  # ~4.5e18 FLOPs per iteration


def test_transformers_floating_point_ops_gpt2():
    # transformers/trainer.py Trainer.floating_point_ops: 6 * tokens * num_parameters(exclude_embeddings=True)
    assert value(GPT2, "transformers floating_point_ops") == 6 * (124_439_808 - 50257 * 768 - 1024 * 768)


def test_every_convention_decomposes_with_residual_0_on_gpt_shapes():
    for shapes in (GPT2, GPT3):
        for e in llm.evaluate_all(shapes):
            assert e.residual == 0, (e.name, e.residual)


def test_gpt2_parameter_terms_by_hand():
    t = llm.terms(GPT2)
    assert t[llm.P_BLOCK] == 12 * 12 * 768**2
    # biases (3d + d + 4d + d) and two LayerNorms (4d) per layer, the final LayerNorm (2d)
    assert t[llm.P_OTHER] == 12 * 13 * 768 + 2 * 768 == 121_344
    assert t[llm.BIAS] == 12 * 9 * 768


def test_gated_ffn_leaves_a_residual_in_kaplans_formula():
    # Llama 7B: Kaplan's N assumes two FFN matrices; SwiGLU has three: the residual is n_layer d_model d_ff
    s = llm.Shapes(n_layer=32, d_model=4096, n_heads=32, d_head=128, d_ff=11008, n_vocab=32000, n_ctx=2048,
                   gated_ffn=True, tied_head=False, linear_bias=False)
    kaplan = next(e for e in llm.evaluate_all(s) if e.name == "Kaplan N (non-embedding)")
    assert kaplan.residual == -32 * 4096 * 11008


def test_explain_total_prefers_logits_and_finds_bias():
    tokens = 1024
    per_token = 84_934_656 + 18_874_368 + 38_597_376 + 82_944  # MACC + ATTN + LOGITS + BIAS (ptflops aten)
    assert llm.explain_total(per_token * tokens, GPT2, tokens) == {llm.MACC: 1, llm.ATTN: 1, llm.LOGITS: 1,
                                                                    llm.BIAS: 1}
    assert llm.explain_total(284_812_800 * tokens, GPT2, tokens) == {llm.MACC: 2, llm.ATTN: 2, llm.LOGITS: 2}


@pytest.mark.parametrize("combo, text", [({"MACC": 2, "ATTN": Fraction(1, 2)}, "2*MACC + 1/2*ATTN"),
                                         ({}, "0"), ({"MACC": -1}, "-1*MACC")])
def test_format_combo(combo, text):
    assert llm.format_combo(combo) == text


def test_shapes_from_config_names():
    gpt2 = llm.shapes_from_config({"model_type": "gpt2", "n_layer": 12, "n_embd": 768, "n_head": 12, "n_inner": None,
                                   "vocab_size": 50257, "activation_function": "gelu_new"}, 1024)
    assert (gpt2.d_ff, gpt2.d_head, gpt2.gated_ffn, gpt2.linear_bias) == (3072, 64, False, True)
    llama = llm.shapes_from_config({"model_type": "llama", "num_hidden_layers": 32, "hidden_size": 4096,
                                    "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 11008,
                                    "vocab_size": 32000, "hidden_act": "silu", "tie_word_embeddings": False,
                                    "attention_bias": False}, 2048)
    assert (llama.gated_ffn, llama.d_kv, llama.tied_head, llama.linear_bias) == (True, 8 * 128, False, False)


# Forward totals per token the counters printed (python bench/bench_llm.py tools; torch 2.13.0, transformers 5.24.0,
# fvcore 0.1.5.post20221221, ptflops 0.7.5, calflops 0.3.2, deepspeed 0.19.8), hf:gpt2 at T=1024 and hf:bert at
# T=512, batch 1; each must be explained exactly (residual 0) by the basis terms.
RECORDED_GPT2 = [
    ("eager", "torch_flop_counter", 284_812_800, "2*MACC + 2*ATTN + 2*LOGITS"),
    ("eager", "fvcore", 142_502_400, "1*MACC + 1*ATTN + 1*LOGITS + 5*NORM"),
    ("eager", "ptflops_aten", 142_489_344, "1*MACC + 1*ATTN + 1*LOGITS + 1*BIAS"),
    ("eager", "calflops", 285_056_337, "2*MACC + 2*ATTN + 2*LOGITS + 1*BIAS_CH + 1*SOFTMAX + 5*NORM"),
    ("sdpa", "torch_flop_counter", 247_064_064, "2*MACC + 2*LOGITS"),  # blind to SDPA: no ATTN
    ("sdpa", "ptflops_aten", 123_614_976, "1*MACC + 1*LOGITS + 1*BIAS"),
    ("sdpa", "deepspeed", 284_908_881, "2*MACC + 2*ATTN + 2*LOGITS + 1*BIAS_CH + 5*NORM"),
]


@pytest.mark.parametrize("attn, tool, per_token, basis", RECORDED_GPT2)
def test_recorded_gpt2_counts_are_explained(attn, tool, per_token, basis):
    assert llm.format_combo(llm.explain_total(per_token * 1024, GPT2, 1024)) == basis


@pytest.mark.slow  # explain_total searches the combinations of basis terms: seconds
def test_bert_pooler_term_by_hand():
    bert = llm.Shapes(n_layer=12, d_model=768, n_heads=12, d_head=64, d_ff=3072, n_vocab=30522, n_ctx=512,
                      lm_head=False, pooler=True)
    t = llm.terms(bert)
    assert t[llm.POOLER] == Fraction(768 * 768, 512)  # dense 768 -> 768 on the first token of each sequence
    assert t[llm.BIAS] == 12 * 9 * 768 + Fraction(768, 512)
    # FlopCounterMode, eager BertModel, T=512: 188,745,984 per token = 2*MACC + 2*ATTN + 2*POOLER
    assert 2 * t[llm.MACC] + 2 * t[llm.ATTN] + 2 * t[llm.POOLER] == 188_745_984
    assert llm.format_combo(llm.explain_total(188_745_984 * 512, bert, 512)) == "2*MACC + 2*ATTN + 2*POOLER"


# ------------------------------------------------------------------------------------------------ families (issue 21)
def params(shapes, name):
    return llm.by_name(name).value(shapes)


# Pythia-70M (GPT-NeoX: 6 layers, d_model 512, vocabulary 50,304, untied embed_in / embed_out), the model card's
# exact counts: total 70,426,624, non-embedding 18,915,328.
PYTHIA_70M = llm.Shapes(n_layer=6, d_model=512, n_heads=8, d_head=64, d_ff=2048, n_vocab=50304, n_ctx=2048,
                        tied_head=False, n_params=70_426_624, hf_non_embedding=70_426_624 - 50304 * 512,
                        p_output_untied=50304 * 512)


def test_non_embedding_parameters_as_kaplan_define_them():
    # per layer: fused qkv 3d^2 + 3d, dense d^2 + d, two LayerNorms 4d, MLP 4d^2 + 4d + 4d^2 + d = 12d^2 + 13d;
    # plus the final LayerNorm 2d; no vocabulary or position embedding, no output embedding
    d = 512
    assert params(PYTHIA_70M, "non-embedding parameters (counted)") == 6 * (12 * d * d + 13 * d) + 2 * d \
        == 18_915_328
    # transformers' exclude_embeddings drops embed_in only: the untied embed_out (a Linear) stays
    assert params(PYTHIA_70M, "transformers non-embedding parameters") == 18_915_328 + 50304 * 512
    assert params(PYTHIA_70M, "parameters without the untied output embedding") == 70_426_624 - 50304 * 512
    families = {e.name: e.family for e in llm.evaluate_all(PYTHIA_70M, llm.PARAMS)}
    assert families["non-embedding parameters (counted)"] == families["Kaplan N (non-embedding)"] == \
        llm.F_NON_EMBEDDING


# Mixtral 8x7B: 32 layers, d 4096, 32 query heads and 8 key/value heads of 128, 8 SwiGLU experts of 14,336, top 2,
# vocabulary 32,000, untied embeddings.
def mixtral() -> llm.Shapes:
    d, ff, layers = 4096, 14336, 32
    attention = 2 * d * d + 2 * d * 1024  # q, o: d x d; k, v: d x (8 heads x 128)
    experts = 8 * 3 * d * ff
    per_layer = attention + experts + d * 8 + 2 * d  # + router, two RMSNorms
    total = layers * per_layer + 2 * 32000 * d + d  # + embed_tokens, lm_head, final norm
    assert total == 46_702_792_704  # what the built MixtralForCausalLM counts (tests/test_presets.py)
    return llm.Shapes(n_layer=layers, d_model=d, n_heads=32, d_head=128, d_ff=ff, n_vocab=32000, n_ctx=4096,
                      n_kv_heads=8, gated_ffn=True, tied_head=False, linear_bias=False, n_params=total,
                      hf_non_embedding=total - 32000 * d, n_experts=8, top_k=2, p_experts=layers * experts,
                      p_output_untied=32000 * d)


def test_active_parameters_of_a_mixture_of_experts():
    s = mixtral()
    idle = 32 * 6 * 3 * 4096 * 14336  # 6 of 8 experts per layer are not used by a token
    assert s.p_idle == idle == 33_822_867_456
    active = params(s, "active parameters per token")
    assert active == 46_702_792_704 - idle == 12_879_925_248  # Mixtral's "13B active parameters" (12.9B)
    assert llm.by_name("6ND (N = active parameters)").value(s) == 6 * active
    e = next(e for e in llm.evaluate_all(s, llm.PARAMS) if e.name == "active parameters per token")
    assert e.residual == 0 and e.family == llm.F_ACTIVE


# T5-Small (Raffel et al. 2020): d_model 512, d_ff 2048, 8 heads of 64, 6 + 6 layers, vocabulary 32,128 shared by
# the encoder, the decoder and the (tied) output; relative position biases 32 buckets x 8 heads per stack.
T5_SMALL_SHARED = 32128 * 512
T5_SMALL_ENCODER = 6 * (4 * 512 * 512 + 2 * 512 * 2048 + 2 * 512) + 32 * 8 + 512  # self-attn, FFN, 2 norms; bias, norm
T5_SMALL_DECODER = 6 * (8 * 512 * 512 + 2 * 512 * 2048 + 3 * 512) + 32 * 8 + 512  # + cross-attention, 3 norms
T5_SMALL = llm.shapes_from_config(
    {"model_type": "t5", "d_model": 512, "d_ff": 2048, "num_layers": 6, "num_heads": 8, "d_kv": 64,
     "vocab_size": 32128, "feed_forward_proj": "relu", "is_encoder_decoder": True, "head": "base",
     "p_encoder": T5_SMALL_SHARED + T5_SMALL_ENCODER, "p_decoder": T5_SMALL_SHARED + T5_SMALL_DECODER},
    512, n_params=T5_SMALL_SHARED + T5_SMALL_ENCODER + T5_SMALL_DECODER,
    hf_non_embedding=T5_SMALL_ENCODER + T5_SMALL_DECODER)


def test_encoder_decoder_shapes_and_halves():
    s = T5_SMALL
    assert (s.encoder_decoder, s.n_layer, s.n_decoder_layer, s.d_head, s.d_ff, s.gated_ffn) == (True, 6, 6, 64, 2048,
                                                                                                 False)
    assert s.n_params == 60_506_624  # T5Model's count (the probe's, tests/test_presets.py)
    assert params(s, "encoder parameters") == 16_449_536 + 18_881_280 == 35_330_816
    assert params(s, "decoder parameters") == 16_449_536 + 25_175_808 == 41_625_344
    # the decoder-only formulas do not apply to an encoder-decoder: no Kaplan N, no Chinchilla, no PaLM
    names = {e.name for e in llm.evaluate_all(s)}
    assert "Kaplan N (non-embedding)" not in names and "Chinchilla 3 x forward (App. F)" not in names
    assert "6 (N/2) D (encoder-decoder)" in names


def test_encoder_decoder_training_compute_is_gpt3_table_d1s():
    # Brown et al. 2020 Table D.1: T5 "only half of the parameters are active for each token": 3 x 2 x N/2 per token
    per_token = llm.by_name("6 (N/2) D (encoder-decoder)").value(T5_SMALL)
    assert per_token == 3 * 60_506_624
    total = float(per_token) * 1e12  # 1,000 billion tokens
    assert total == 1.81519872e20  # the table prints 1.80E+20, computed from its rounded 60M
    ranked = llm.rank_training_compute(T5_SMALL, 1.80e20, 1e12)
    assert ranked[0].name == "6 (N/2) D (encoder-decoder)"


def test_without_the_untied_output_embedding_llama2_7b():
    # Llama 2 7B as built (6,738,415,616) less its untied lm_head 32,000 x 4,096
    s = llm.Shapes(n_layer=32, d_model=4096, n_heads=32, d_head=128, d_ff=11008, n_vocab=32000, n_ctx=4096,
                   gated_ffn=True, tied_head=False, linear_bias=False, n_params=6_738_415_616,
                   hf_non_embedding=6_738_415_616 - 32000 * 4096, p_output_untied=32000 * 4096)
    assert params(s, "parameters without the untied output embedding") == 6_738_415_616 - 131_072_000
    assert llm.by_name("6ND (N without the untied output embedding)").value(s) == 6 * 6_607_343_616


def test_shapes_from_config_refuses_what_it_cannot_read():
    with pytest.raises(ValueError, match="no single n_embd"):
        llm.shapes_from_config({"model_type": "swin", "embed_dim": 96, "depths": [2, 2, 6, 2]}, 1)
