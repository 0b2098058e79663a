"""Models built from library code: `transformers` configuration classes (`from_config`, no weights, no download)
and torch.nn's own TransformerEncoder. `meta=True` builds on the meta device (no memory for weights)."""
import contextlib

import torch
import torch.nn as nn

HEADS = {"vit": "AutoModelForImageClassification", "swin": "AutoModelForImageClassification",
         "convnext": "AutoModelForImageClassification", "resnet": "AutoModelForImageClassification",
         "mobilenet_v2": "AutoModelForImageClassification", "bert": "AutoModel", "gpt2": "AutoModelForCausalLM",
         "llama": "AutoModelForCausalLM"}
IMAGE, TOKENS = (1, 3, 224, 224), (1, 128)


def input_shape(model_type: str) -> tuple[int, ...]:
    return TOKENS if model_type in ("bert", "gpt2", "llama") else IMAGE


def build(model_type: str, meta: bool = False, **config) -> nn.Module:
    import transformers

    cfg = transformers.AutoConfig.for_model(model_type, **config)
    with torch.device("meta") if meta else contextlib.nullcontext():
        return getattr(transformers, HEADS[model_type]).from_config(cfg).eval()


def encoder_layer() -> nn.Module:
    """d_model 256, 8 heads, feed-forward 1024, one layer (the shapes of the FlopCounterMode measurements)."""
    layer = nn.TransformerEncoderLayer(256, 8, 1024, batch_first=True)
    return nn.TransformerEncoder(layer, 1, enable_nested_tensor=False).eval()


# The same architectures at a size a test can run every counter on in seconds (same code paths, smaller numbers).
SMALL = {
    "vit": dict(image_size=32, patch_size=8, num_hidden_layers=1, hidden_size=64, num_attention_heads=2,
                intermediate_size=128),
    "swin": dict(image_size=32, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[2, 2], window_size=4),
    "convnext": dict(image_size=32, depths=[1, 1], hidden_sizes=[16, 32], num_stages=2),
    "resnet": dict(depths=[1, 1], hidden_sizes=[16, 32], embedding_size=8),
    "mobilenet_v2": dict(image_size=32, depth_multiplier=0.25),
    "bert": dict(num_hidden_layers=1, hidden_size=64, num_attention_heads=2, intermediate_size=128, vocab_size=100),
    "gpt2": dict(n_layer=1, n_embd=64, n_head=2, vocab_size=100, bos_token_id=0, eos_token_id=0),
    "llama": dict(num_hidden_layers=1, hidden_size=64, num_attention_heads=2, num_key_value_heads=1,
                  intermediate_size=128, vocab_size=100),
}
SMALL_IMAGE, SMALL_TOKENS = (1, 3, 32, 32), (1, 16)


def small(model_type: str, **override) -> nn.Module:
    return build(model_type, **{**SMALL[model_type], **override})


def small_input_shape(model_type: str) -> tuple[int, ...]:
    return SMALL_TOKENS if model_type in ("bert", "gpt2", "llama") else SMALL_IMAGE
