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
