"""Published transformer architectures as named configurations (`preset:NAME`), each with the paper's own
architecture table cited. Plain data: `transformers` is imported only when a model is built (reconcile/models.py
`hf_model`), through the configuration class named in `model_type`.

Every preset is (model_type, config keyword arguments, head, citation, note). The keyword arguments are the
table's numbers in the configuration class's own names; what the table does not give (heads of GPT-2, the FFN
width rule of Llama, ...) is said in the note, with where it comes from.
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

PRESETS: dict[str, Preset] = {p.name: p for p in [
    Preset("gpt2-small", "gpt2", _gpt2(12, 768, 12), "causal-lm",
           "Radford et al. 2019, 'Language Models are Unsupervised Multitask Learners', Table 2", "117M", _GPT2_NOTE),
    Preset("gpt2-medium", "gpt2", _gpt2(24, 1024, 16), "causal-lm",
           "Radford et al. 2019, Table 2", "345M", _GPT2_NOTE),
    Preset("gpt2-large", "gpt2", _gpt2(36, 1280, 20), "causal-lm",
           "Radford et al. 2019, Table 2", "762M", _GPT2_NOTE),
    Preset("gpt2-xl", "gpt2", _gpt2(48, 1600, 25), "causal-lm",
           "Radford et al. 2019, Table 2", "1542M", _GPT2_NOTE),
    Preset("gpt3-125m", "gpt2", _gpt2(12, 768, 12, 2048), "causal-lm", _GPT3_CITE, "125M", _GPT3_NOTE,
           ("gpt3-small",)),
    Preset("gpt3-350m", "gpt2", _gpt2(24, 1024, 16, 2048), "causal-lm", _GPT3_CITE, "350M", _GPT3_NOTE,
           ("gpt3-medium",)),
    Preset("gpt3-760m", "gpt2", _gpt2(24, 1536, 16, 2048), "causal-lm", _GPT3_CITE, "760M", _GPT3_NOTE,
           ("gpt3-large",)),
    Preset("gpt3-1.3b", "gpt2", _gpt2(24, 2048, 24, 2048), "causal-lm", _GPT3_CITE, "1.3B", _GPT3_NOTE,
           ("gpt3-xl",)),
    Preset("gpt3-2.7b", "gpt2", _gpt2(32, 2560, 32, 2048), "causal-lm", _GPT3_CITE, "2.7B", _GPT3_NOTE),
    Preset("gpt3-6.7b", "gpt2", _gpt2(32, 4096, 32, 2048), "causal-lm", _GPT3_CITE, "6.7B", _GPT3_NOTE),
    Preset("gpt3-13b", "gpt2", _gpt2(40, 5120, 40, 2048), "causal-lm", _GPT3_CITE, "13.0B",
           _GPT3_NOTE + " Table 2.1 prints d_model 5140 for this row, which is not n_heads * d_head = 40 * 128 = "
                        "5120 and not divisible by 40 heads; 5120 is used."),
    Preset("gpt3-175b", "gpt2", _gpt2(96, 12288, 96, 2048), "causal-lm", _GPT3_CITE, "175.0B", _GPT3_NOTE),
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
    Preset("llama-65b", "llama", _llama(8192, 64, 80), "causal-lm", _LLAMA_CITE, "65.2B", _LLAMA_NOTE),
    Preset("chinchilla-70b", "gpt2", _gpt2(80, 8192, 64, 2048, 32000), "causal-lm",
           "Hoffmann et al. 2022, 'Training Compute-Optimal Large Language Models', Table 4 (80 layers, 64 heads, "
           "key/value size 128, d_model 8,192)", "70B", _DEEPMIND_NOTE),
    Preset("gopher-280b", "gpt2", _gpt2(80, 16384, 128, 2048, 32000), "causal-lm",
           "Rae et al. 2021, 'Scaling Language Models: Methods, Analysis & Insights from Training Gopher', Table 1 "
           "(80 layers, 128 heads, key/value size 128, d_model 16,384)", "280B", _DEEPMIND_NOTE),
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
