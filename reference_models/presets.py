"""Published transformer architectures as named configurations (`preset:NAME`), each with the paper's own
architecture table cited. Plain data: `transformers` is imported only when a model is built (reconcile/models.py
`hf_model`), through the configuration class named in `model_type`.

Every preset is (model_type, config keyword arguments, head, citation, note). The keyword arguments are the
table's numbers in the configuration class's own names; what the table does not give (heads of GPT-2, the FFN
width rule of Llama, ...) is said in the note, with where it comes from. `paper_params` is the parameter count the
paper prints, as printed (tests/test_presets.py checks the built model against it at its printed precision);
`paper_row` is the table's row as printed where the configuration had to depart from it (GPT-3 13B's d_model 5140
is not 40 heads x 128): `inconsistencies` names such rows, and the note says what the preset changed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preset:
    name: str
    model_type: str  # a transformers configuration type: gpt2, llama, bert
    config: dict[str, Any]
    head: str  # causal-lm | masked-lm | base | image-classification
    citation: str  # the paper and its architecture table
    paper_params: str  # the parameter count the paper prints, as printed
    note: str = ""
    aliases: tuple[str, ...] = field(default=())
    paper_row: dict[str, int] = field(default_factory=dict)  # d_model, n_heads, d_head as the table prints them
    params_differ: str = ""  # why the built model is not the printed count at its precision (a known erratum)


def inconsistencies(preset: Preset) -> list[str]:
    """What in the paper's row cannot be built as printed: d_model that is not n_heads x d_head, or not a multiple
    of the head count."""
    row = preset.paper_row
    d_model, heads, d_head = row.get("d_model"), row.get("n_heads"), row.get("d_head")
    out = []
    if d_model and heads and d_head and heads * d_head != d_model:
        out.append(f"d_model {d_model} is not n_heads x d_head = {heads} x {d_head} = {heads * d_head}")
    if d_model and heads and d_model % heads:
        out.append(f"d_model {d_model} is not divisible by {heads} heads")
    return out


def _gpt2(n_layer: int, n_embd: int, n_head: int, n_ctx: int = 1024, vocab: int = 50257) -> dict[str, Any]:
    # GPT2Config: n_inner None = 4 * n_embd, GELU MLP, learned absolute positions, tied input/output embeddings
    # GPT-2's bos/eos id 50256 does not exist in a 32,000-token vocabulary: no special ids there
    ids = {} if vocab > 50256 else dict(bos_token_id=None, eos_token_id=None)
    return dict(n_layer=n_layer, n_embd=n_embd, n_head=n_head, n_positions=n_ctx, vocab_size=vocab, **ids)


_GPT2_NOTE = ("Radford et al. 2019 Table 2 gives layers and d_model only; n_head (12/16/20/25) is from the released "
              "checkpoints' hparams (openai/gpt-2 models/*/hparams.json). n_ctx 1024, vocab 50,257 (§2.3). "
              "Table 2's parameter counts (117M/345M/762M/1542M) were later corrected by the authors to "
              "124M/355M/774M/1558M, which is what these configurations give.")
_GPT3_CITE = "Brown et al. 2020, 'Language Models are Few-Shot Learners', Table 2.1"
_GPT3_NOTE = ("GPT2Config with Table 2.1's n_layers, d_model, n_heads (d_head = d_model / n_heads), n_ctx 2048, "
              "vocab 50,257, d_ff = 4 d_model (§2.1). GPT-3 alternates dense and locally banded sparse attention "
              "layers (§2.1); this configuration makes every layer dense. Parameters are the same and the matmul "
              "FLOPs these conventions count are the same (the banded layers still compute the same projections; "
              "the conventions count full or causal attention, not the band).")


def _llama(dim: int, n_heads: int, n_layers: int) -> dict[str, Any]:
    # SwiGLU hidden size 2/3 * 4d (Touvron et al. 2023 §2.2), rounded up to a multiple of 256 as the released
    # code does (llama/model.py FeedForward, multiple_of=256): 11008 / 13824 / 17920 / 22016.
    hidden = -(-int(2 * 4 * dim / 3) // 256) * 256
    return dict(hidden_size=dim, num_attention_heads=n_heads, num_key_value_heads=n_heads, num_hidden_layers=n_layers,
                intermediate_size=hidden, vocab_size=32000, max_position_embeddings=2048,
                tie_word_embeddings=False)


_LLAMA_CITE = "Touvron et al. 2023, 'LLaMA: Open and Efficient Foundation Language Models', Table 2"


def _llama2(dim: int, n_heads: int, n_layers: int, n_kv_heads: int, hidden: int) -> dict[str, Any]:
    return dict(hidden_size=dim, num_attention_heads=n_heads, num_key_value_heads=n_kv_heads,
                num_hidden_layers=n_layers, intermediate_size=hidden, vocab_size=32000, max_position_embeddings=4096,
                tie_word_embeddings=False)


_LLAMA2_CITE = ("Touvron et al. 2023, 'Llama 2: Open Foundation and Fine-Tuned Chat Models', Table 1 (params, 4k "
                "context, GQA for 70B) and the model card (meta-llama/llama MODEL_CARD.md)")
_LLAMA2_NOTE = ("LlamaConfig with the released checkpoints' dimensions (the paper's Table 1 gives the sizes, the 4k "
                "context and which models use grouped-query attention; the widths are in the released "
                "configurations): FFN hidden size from llama/model.py FeedForward, int(2/3 * 4d), times "
                "ffn_dim_multiplier 1.3 for 70B, rounded up to multiple_of (256; 4096 for 70B): 11008 / 13824 / "
                "28672. 70B: 64 query heads share 8 key/value heads (GQA, k_proj 8192 -> 1024). Vocabulary 32,000, "
                "untied input and output embeddings, RMSNorm, SwiGLU, rotary positions.")


def _pythia(n_layer: int, d_model: int, n_heads: int, vocab: int = 50304) -> dict[str, Any]:
    return dict(num_hidden_layers=n_layer, hidden_size=d_model, num_attention_heads=n_heads,
                intermediate_size=4 * d_model, vocab_size=vocab, max_position_embeddings=2048,
                tie_word_embeddings=False)


_PYTHIA_CITE = ("Biderman et al. 2023, 'Pythia: A Suite for Analyzing Large Language Models', Table 1 and the model "
                "card's 'Naming convention and parameter count' table (huggingface.co/EleutherAI/pythia-*)")
_PYTHIA_NOTE = ("GPTNeoXConfig with the table's layers, model dim and heads; d_ff = 4 d_model, rotary on 25% of each "
                "head, parallel attention and MLP, untied embed_in / embed_out; vocabulary padded to 50,304 "
                "(70M-2.8B), "
                "50,432 (6.9B), 50,688 (12B) as the released checkpoints (the model card's exact totals fix them: "
                "total - non-embedding = 2 x vocab x d_model).")


def _t5(d_model: int, d_ff: int, n_layers: int, n_heads: int, d_kv: int) -> dict[str, Any]:
    return dict(d_model=d_model, d_ff=d_ff, num_layers=n_layers, num_heads=n_heads, d_kv=d_kv, vocab_size=32128)


_T5_CITE = ("Raffel et al. 2020, 'Exploring the Limits of Transfer Learning with a Unified Text-to-Text "
            "Transformer', §3.1.1 (Base) and §3.7 (Small, Large, 3B, 11B)")
_T5_NOTE = ("T5Config (the bare T5Model: shared input embedding, tied output; ReLU FFN, relative position biases); "
            "vocabulary 32,128 as released (§2.4 says 32,000 wordpieces). 3B and 11B keep d_model 1024 with "
            "n_heads x d_kv = 4096 and 16384 inner attention widths, as §3.7 prints them (T5 projects d_model to "
            "n_heads x d_kv, so this is not an inconsistency).")
_LLAMA_NOTE = ("LlamaConfig with Table 2's dimension, n heads, n layers; FFN hidden size 2/3 * 4d (§2.2) rounded up "
               "to a multiple of 256 as in the released code (llama/model.py, multiple_of=256); vocab 32,000 (§2.1); "
               "context 2048; untied input and output embeddings; RMSNorm, SwiGLU, rotary positions as in §2.2.")

_DEEPMIND_NOTE = ("Approximation: no transformers class has this architecture. GPT2Config with the table's "
                  "n_layers, d_model and heads (key/value size = d_model / heads), d_ff = 4 d_model, vocab 32,000, "
                  "context 2048. The real model uses relative position encodings (Transformer-XL style, with a "
                  "per-layer d_model x d_model relative-position projection this configuration lacks: about "
                  "n_layers * d_model^2 parameters fewer, hence the count below the paper's) and RMSNorm instead of "
                  "LayerNorm; it has learned absolute positions (n_ctx * d_model parameters) instead. The "
                  "matmul FLOPs of Hoffmann et al. Appendix F (which has no relative-position term either) are "
                  "those of this configuration.")

def _vit(hidden: int, layers: int, heads: int, mlp: int, patch: int) -> dict[str, Any]:
    return dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=mlp,
                patch_size=patch, image_size=224, num_labels=1000)


_VIT_CITE = ("Dosovitskiy et al. 2021, 'An Image is Worth 16x16 Words', Table 1 (layers, hidden size, MLP size, "
             "heads); "
             "the torchvision {} page for the count at 224x224 with 1,000 classes")
_VIT_NOTE = ("ViTConfig (ViTForImageClassification: class token, learned positions, no pooler) at 224x224 with 1,000 "
             "ImageNet classes, as torchvision's vit_* builders.")


def _efficientnet(width: float, depth: float, resolution: int, head: int) -> dict[str, Any]:
    return dict(width_coefficient=width, depth_coefficient=depth, image_size=resolution, hidden_dim=head,
                num_labels=1000)


_EFFNET_CITE = ("Tan & Le 2019, 'EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks', Table 2 "
                "(#Params); coefficients (width, depth, resolution) from the official code, tensorflow/tpu "
                "models/official/efficientnet/efficientnet_builder.py efficientnet_params")
_EFFNET_NOTE = ("EfficientNetConfig with the builder's width and depth coefficients and resolution; the head conv's "
                "width is round_filters(1280 x width) (1280, 1280, 1408, 1536, 1792, 2048), which transformers' "
                "config calls hidden_dim; 1,000 ImageNet classes.")


PRESETS: dict[str, Preset] = {p.name: p for p in [
    Preset("gpt2-small", "gpt2", _gpt2(12, 768, 12), "causal-lm",
           "Radford et al. 2019, 'Language Models are Unsupervised Multitask Learners', Table 2", "117M", _GPT2_NOTE,
           params_differ=("Table 2's counts are the paper's erratum: the authors' repository (openai/gpt-2 README) "
                          "corrects 117M/345M/762M/1542M to 124M/355M/774M/1558M, which this configuration builds")),
    Preset("gpt2-medium", "gpt2", _gpt2(24, 1024, 16), "causal-lm",
           "Radford et al. 2019, Table 2", "345M", _GPT2_NOTE,
           params_differ=("Table 2's counts are the paper's erratum: the authors' repository (openai/gpt-2 README) "
                          "corrects 117M/345M/762M/1542M to 124M/355M/774M/1558M, which this configuration builds")),
    Preset("gpt2-large", "gpt2", _gpt2(36, 1280, 20), "causal-lm",
           "Radford et al. 2019, Table 2", "762M", _GPT2_NOTE,
           params_differ=("Table 2's counts are the paper's erratum: the authors' repository (openai/gpt-2 README) "
                          "corrects 117M/345M/762M/1542M to 124M/355M/774M/1558M, which this configuration builds")),
    Preset("gpt2-xl", "gpt2", _gpt2(48, 1600, 25), "causal-lm",
           "Radford et al. 2019, Table 2", "1542M", _GPT2_NOTE,
           params_differ=("Table 2's counts are the paper's erratum: the authors' repository (openai/gpt-2 README) "
                          "corrects 117M/345M/762M/1542M to 124M/355M/774M/1558M, which this configuration builds")),
    Preset("gpt3-125m", "gpt2", _gpt2(12, 768, 12, 2048), "causal-lm", _GPT3_CITE, "125M", _GPT3_NOTE,
           ("gpt3-small",),
           paper_row=dict(d_model=768, n_heads=12, d_head=64)),
    Preset("gpt3-350m", "gpt2", _gpt2(24, 1024, 16, 2048), "causal-lm", _GPT3_CITE, "350M", _GPT3_NOTE,
           ("gpt3-medium",),
           paper_row=dict(d_model=1024, n_heads=16, d_head=64),
           params_differ=("Table 2.1's 350M is a rounded name: the same paper's Table D.1 counts GPT-3 Medium at "
                          "356M, which this configuration builds (355.9M)")),
    Preset("gpt3-760m", "gpt2", _gpt2(24, 1536, 16, 2048), "causal-lm", _GPT3_CITE, "760M", _GPT3_NOTE,
           ("gpt3-large",),
           paper_row=dict(d_model=1536, n_heads=16, d_head=96)),
    Preset("gpt3-1.3b", "gpt2", _gpt2(24, 2048, 16, 2048), "causal-lm", _GPT3_CITE, "1.3B",
           _GPT3_NOTE + " Table 2.1 prints 24 heads of d_head 128 for d_model 2048: 24 x 128 = 3072 is not 2048, and "
                        "2048 is not divisible by 24. 16 heads of 128 are used (d_model and d_head as printed); the "
                        "parameters and the matmul FLOPs do not depend on the head count.",
           ("gpt3-xl",),
           paper_row=dict(d_model=2048, n_heads=24, d_head=128)),
    Preset("gpt3-2.7b", "gpt2", _gpt2(32, 2560, 32, 2048), "causal-lm", _GPT3_CITE, "2.7B", _GPT3_NOTE,
           paper_row=dict(d_model=2560, n_heads=32, d_head=80)),
    Preset("gpt3-6.7b", "gpt2", _gpt2(32, 4096, 32, 2048), "causal-lm", _GPT3_CITE, "6.7B", _GPT3_NOTE,
           paper_row=dict(d_model=4096, n_heads=32, d_head=128)),
    Preset("gpt3-13b", "gpt2", _gpt2(40, 5120, 40, 2048), "causal-lm", _GPT3_CITE, "13.0B",
           _GPT3_NOTE + " Table 2.1 prints d_model 5140 for this row, which is not n_heads * d_head = 40 * 128 = "
                        "5120 and not divisible by 40 heads; 5120 is used.",
           paper_row=dict(d_model=5140, n_heads=40, d_head=128),
           params_differ=("Table 2.1 rounds 12.85B up to 13.0B: the same paper's Table D.1 counts 12,850M, which "
                          "this configuration builds (12,853M)")),
    Preset("gpt3-175b", "gpt2", _gpt2(96, 12288, 96, 2048), "causal-lm", _GPT3_CITE, "175.0B", _GPT3_NOTE,
           paper_row=dict(d_model=12288, n_heads=96, d_head=128),
           params_differ=("Table 2.1 prints 175.0B for 174.6B: the same paper's Table D.1 counts 174,600M, which "
                          "this configuration builds (174,604M)")),
    Preset("bert-base", "bert", dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12,
                                     intermediate_size=3072, vocab_size=30522, max_position_embeddings=512),
           "base", "Devlin et al. 2019, 'BERT', §3 (BERT_BASE: L=12, H=768, A=12)", "110M",
           "BertConfig; filter size 4H (§3, footnote on Vaswani et al.), WordPiece vocabulary 30,522 as released "
           "(§3 says 30,000), 512 positions. Head: the bare encoder with its pooler (BertModel)."),
    Preset("bert-large", "bert", dict(num_hidden_layers=24, hidden_size=1024, num_attention_heads=16,
                                      intermediate_size=4096, vocab_size=30522, max_position_embeddings=512),
           "base", "Devlin et al. 2019, 'BERT', §3 (BERT_LARGE: L=24, H=1024, A=16)", "340M",
           "BertConfig; filter size 4H, vocabulary 30,522 as released, 512 positions; BertModel with pooler."),
    Preset("llama-7b", "llama", _llama(4096, 32, 32), "causal-lm", _LLAMA_CITE, "6.7B", _LLAMA_NOTE),
    Preset("llama-13b", "llama", _llama(5120, 40, 40), "causal-lm", _LLAMA_CITE, "13.0B", _LLAMA_NOTE),
    Preset("llama-33b", "llama", _llama(6656, 52, 60), "causal-lm", _LLAMA_CITE, "32.5B", _LLAMA_NOTE),
    Preset("llama-65b", "llama", _llama(8192, 64, 80), "causal-lm", _LLAMA_CITE, "65.2B", _LLAMA_NOTE,
           params_differ=("Table 2 truncates: 65.29B prints as 65.2B (the other rows agree with truncation too: 6.74"
                          " -> 6.7, 13.02 -> 13.0, 32.53 -> 32.5)")),
    Preset("llama2-7b", "llama", _llama2(4096, 32, 32, 32, 11008), "causal-lm", _LLAMA2_CITE, "7B", _LLAMA2_NOTE),
    Preset("llama2-13b", "llama", _llama2(5120, 40, 40, 40, 13824), "causal-lm", _LLAMA2_CITE, "13B", _LLAMA2_NOTE),
    Preset("llama2-70b", "llama", _llama2(8192, 64, 80, 8, 28672), "causal-lm", _LLAMA2_CITE, "70B", _LLAMA2_NOTE),
    Preset("llama3-405b", "llama", dict(hidden_size=16384, num_hidden_layers=126, num_attention_heads=128,
                                        num_key_value_heads=8, intermediate_size=53248, vocab_size=128256,
                                        max_position_embeddings=8192, tie_word_embeddings=False), "causal-lm",
           "Dubey et al. 2024, 'The Llama 3 Herd of Models', §3.2 and Table 3 (126 layers, model dimension 16,384, "
           "128 attention heads, 8 key/value heads) and §1 (405B parameters, 15.6T tokens, 3.8 x 10^25 FLOPs)",
           "405B",
           "LlamaConfig with Table 3's 405B row; FFN hidden size 53,248 and the 128,256-token vocabulary as released "
           "(meta-llama/llama-models); untied embeddings; context 8,192 (the pre-training length before long-context "
           "training).",
           params_differ="the built model has 405.85B parameters: the paper truncates to 405B, as the first LLaMA "
                         "paper does (65.29B printed as 65.2B)"),
    Preset("pythia-70m", "gpt_neox", _pythia(6, 512, 8), "causal-lm", _PYTHIA_CITE, "70,426,624", _PYTHIA_NOTE),
    Preset("pythia-160m", "gpt_neox", _pythia(12, 768, 12), "causal-lm", _PYTHIA_CITE, "162,322,944", _PYTHIA_NOTE),
    Preset("pythia-410m", "gpt_neox", _pythia(24, 1024, 16), "causal-lm", _PYTHIA_CITE, "405,334,016", _PYTHIA_NOTE),
    Preset("pythia-1b", "gpt_neox", _pythia(16, 2048, 8), "causal-lm", _PYTHIA_CITE, "1,011,781,632", _PYTHIA_NOTE),
    Preset("pythia-1.4b", "gpt_neox", _pythia(24, 2048, 16), "causal-lm", _PYTHIA_CITE, "1,414,647,808",
           _PYTHIA_NOTE),
    Preset("pythia-2.8b", "gpt_neox", _pythia(32, 2560, 32), "causal-lm", _PYTHIA_CITE, "2,775,208,960",
           _PYTHIA_NOTE),
    Preset("pythia-6.9b", "gpt_neox", _pythia(32, 4096, 32, 50432), "causal-lm", _PYTHIA_CITE, "6,857,302,016",
           _PYTHIA_NOTE),
    Preset("pythia-12b", "gpt_neox", _pythia(36, 5120, 40, 50688), "causal-lm", _PYTHIA_CITE, "11,846,072,320",
           _PYTHIA_NOTE),
    Preset("t5-small", "t5", _t5(512, 2048, 6, 8, 64), "base", _T5_CITE, "60M", _T5_NOTE),
    Preset("t5-base", "t5", _t5(768, 3072, 12, 12, 64), "base", _T5_CITE, "220M", _T5_NOTE),
    Preset("t5-large", "t5", _t5(1024, 4096, 24, 16, 64), "base", _T5_CITE, "770M", _T5_NOTE,
           params_differ="the built model has 737.7M: §3.7's 'about 770 million' is rounded up, and the released "
                         "t5-large checkpoint has the same 737.7M"),
    Preset("t5-3b", "t5", _t5(1024, 16384, 24, 32, 128), "base", _T5_CITE, "3B", _T5_NOTE),
    Preset("t5-11b", "t5", _t5(1024, 65536, 24, 128, 128), "base", _T5_CITE, "11B", _T5_NOTE),
    Preset("roberta-base", "roberta", dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12,
                                           intermediate_size=3072, vocab_size=50265, max_position_embeddings=514,
                                           type_vocab_size=1), "base",
           "Liu et al. 2019, 'RoBERTa: A Robustly Optimized BERT Pretraining Approach', §3 and §4 (BERT_BASE "
           "architecture, a 50K byte-level BPE vocabulary)", "125M",
           "RobertaConfig: BERT_BASE's L=12, H=768, A=12 with the 50,265-token BPE vocabulary and 514 positions of "
           "the released checkpoint; the bare encoder with its pooler (RobertaModel). 125M is Brown et al. 2020 "
           "Table D.1's count."),
    Preset("roberta-large", "roberta", dict(num_hidden_layers=24, hidden_size=1024, num_attention_heads=16,
                                            intermediate_size=4096, vocab_size=50265, max_position_embeddings=514,
                                            type_vocab_size=1), "base",
           "Liu et al. 2019, 'RoBERTa', §4.1 (RoBERTa_LARGE: L = 24, H = 1024, A = 16, 355M parameters)", "355M",
           "RobertaConfig with BERT_LARGE's shape, the 50,265-token vocabulary and 514 positions; RobertaModel."),
    Preset("mixtral-8x7b", "mixtral", dict(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
                                           num_key_value_heads=8, intermediate_size=14336, vocab_size=32000,
                                           num_local_experts=8, num_experts_per_tok=2,
                                           max_position_embeddings=32768, tie_word_embeddings=False),
           "causal-lm", "Jiang et al. 2024, 'Mixtral of Experts', abstract ('each token has access to 47B "
                        "parameters, but only uses 13B active parameters') and §2 (Mistral 7B's architecture, 8 "
                        "experts, top 2)", "47B",
           "MixtralConfig with the released Mixtral-8x7B dimensions (hidden 4096, 32 layers, 32 query heads sharing "
           "8 key/value heads, 8 SwiGLU experts of hidden size 14336 per layer, 2 per token, vocabulary 32,000, "
           "untied embeddings; as the transformers module dump in keras-team/keras-hub's Mixtral README). 'Active "
           "parameters' = all - 6/8 of the experts."),
    Preset("vit-b-16", "vit", _vit(768, 12, 12, 3072, 16), "image-classification", _VIT_CITE.format("vit_b_16"),
           "86567656", _VIT_NOTE),
    Preset("vit-l-16", "vit", _vit(1024, 24, 16, 4096, 16), "image-classification", _VIT_CITE.format("vit_l_16"),
           "304326632", _VIT_NOTE),
    Preset("vit-h-14", "vit", _vit(1280, 32, 16, 5120, 14), "image-classification",
           "Dosovitskiy et al. 2021, 'An Image is Worth 16x16 Words', Table 1 (ViT-Huge: 32 layers, hidden 1280, MLP "
           "5120, 16 heads) at 224x224 with patch 14", "632M", _VIT_NOTE),
    Preset("swin-t", "swin", dict(num_labels=1000), "image-classification",
           "Liu et al. 2021, 'Swin Transformer', Table 1 (Swin-T: C = 96, layers {2, 2, 6, 2}, window 7); the "
           "torchvision swin_t page (num_params 28288354, GFLOPS 4.49)", "28288354",
           "SwinConfig's defaults are Swin-T's (embed_dim 96, depths 2-2-6-2, heads 3-6-12-24, window 7, 224x224); "
           "1,000 ImageNet classes."),
    Preset("convnext-t", "convnext", dict(num_labels=1000), "image-classification",
           "Liu et al. 2022, 'A ConvNet for the 2020s' (ConvNeXt-T: C = (96, 192, 384, 768), B = (3, 3, 9, 3)); "
           "timm's convnext_tiny.fb_in1k model card (Params (M): 28.6, GMACs: 4.5)", "28.6M",
           "ConvNextConfig's defaults are ConvNeXt-T's (hidden sizes 96-192-384-768, depths 3-3-9-3, 224x224); "
           "1,000 ImageNet classes."),
    *[Preset(f"efficientnet-b{i}", "efficientnet", _efficientnet(*coefs), "image-classification", _EFFNET_CITE,
             params, _EFFNET_NOTE,
             params_differ="the built model has 9,109,994 parameters (9.1M); Table 2 prints 9.2M, as pycls's model "
                           "zoo does for its own EfficientNet-B2" if i == 2 else "")
      for i, (coefs, params) in enumerate(zip(((1.0, 1.0, 224, 1280), (1.0, 1.1, 240, 1280), (1.1, 1.2, 260, 1408),
                                               (1.2, 1.4, 300, 1536), (1.4, 1.8, 380, 1792), (1.6, 2.2, 456, 2048)),
                                              ("5.3M", "7.8M", "9.2M", "12M", "19M", "30M")))],
    Preset("chinchilla-70b", "gpt2", _gpt2(80, 8192, 64, 2048, 32000), "causal-lm",
           "Hoffmann et al. 2022, 'Training Compute-Optimal Large Language Models', Table 4 (80 layers, 64 heads, "
           "key/value size 128, d_model 8,192)", "70B", _DEEPMIND_NOTE,
           params_differ=("an approximation with GPT2Config (note): no relative-position projections, so about "
                          "n_layers x d_model^2 fewer parameters than the paper's model")),
    Preset("gopher-280b", "gpt2", _gpt2(80, 16384, 128, 2048, 32000), "causal-lm",
           "Rae et al. 2021, 'Scaling Language Models: Methods, Analysis & Insights from Training Gopher', Table 1 "
           "(80 layers, 128 heads, key/value size 128, d_model 16,384)", "280B", _DEEPMIND_NOTE,
           params_differ=("an approximation with GPT2Config (note): no relative-position projections, so about "
                          "n_layers x d_model^2 fewer parameters than the paper's model")),
]}
_ALIASES = {alias: p.name for p in PRESETS.values() for alias in p.aliases}


def get(name: str) -> Preset:
    from reconcile.errors import UserError

    found = PRESETS.get(name) or PRESETS.get(_ALIASES.get(name, ""))
    if found is None:
        from reconcile.names import did_you_mean

        raise UserError(f"unknown preset {name!r}{did_you_mean(name, list(PRESETS) + list(_ALIASES))}; presets: "
                        f"{', '.join(PRESETS)}")
    return found
