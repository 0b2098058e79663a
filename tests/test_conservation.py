"""The reference is complete on today's architectures: every parameter and every multiply-accumulate accounted for.

Independent yardsticks: `model.num_parameters()` / `parameters()` for params, torch's own FlopCounterMode (2 FLOPs
per multiply-accumulate of every mm / bmm / addmm / convolution it dispatches) for products, and hand arithmetic
written out below for the small models."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from conventions import ir
from conventions import terms as T
from conventions.formulas import model_counts
from reconcile.frontends.torch_ir import from_module
from zoo import hf_zoo, modern


def reference(model, shape, dtype=None):
    graph = from_module(model, shape, "m", input_dtype=dtype)
    return graph, model_counts(graph)[-1][1]


@pytest.mark.slow  # each model type at its default (full) size
@pytest.mark.parametrize("model_type", list(hf_zoo.HEADS))
def test_transformers_default_configs_conserve_params_and_products(model_type):
    """Default configs on the meta device (no weights). Under grad, on meta, scaled-dot-product attention runs its
    math path (bmm), so FlopCounterMode sees every product: its total / 2 is the model's MACC exactly."""
    model = hf_zoo.build(model_type, meta=True)
    shape = hf_zoo.input_shape(model_type)
    dtype = torch.long if len(shape) == 2 else None
    graph, total = reference(model, shape, dtype)
    assert total.params == model.num_parameters()
    assert not [layer for layer in graph.layers if layer.kind in (ir.UNKNOWN, ir.GAP)]
    with torch.enable_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(*shape, dtype=dtype or torch.float32, device="meta"))
    assert total.macc == counter.get_total_flops() // 2


@pytest.mark.slow  # Llama and ViT at their default sizes
def test_llama_and_vit_numbers():
    # facts measured with FlopCounterMode (torch 2.13.0, transformers 5.24.0): ViT-Base/16 at 224 with eager
    # attention 17,563,061,760 MACC; Llama default config (7B) 6,738,415,616 params, 1x128 tokens
    # 1,700,001,742,848 FLOPs = 850,000,871,424 MACC
    _, vit = reference(hf_zoo.build("vit", meta=True), hf_zoo.IMAGE)
    assert (vit.params, vit.macc) == (85_800_194, 17_563_061_760)
    _, llama = reference(hf_zoo.build("llama", meta=True), hf_zoo.TOKENS, torch.long)
    assert (llama.params, llama.macc) == (6_738_415_616, 850_000_871_424)


def test_transformer_encoder_layer_by_hand():
    # d 256, 8 heads (32 each), ff 1024, T 64: qkv 64*256*768 + out 64*256*256 + QK^T 8*64*64*32 + AV 8*64*64*32
    # + FFN 64*256*1024*2
    graph, total = reference(hf_zoo.encoder_layer(), (1, 64, 256))
    by_hand = 64 * 256 * 768 + 64 * 256 * 256 + 2 * 8 * 64 * 64 * 32 + 2 * 64 * 256 * 1024
    assert total.macc == by_hand == 52_428_800
    assert total.params == sum(p.numel() for p in hf_zoo.encoder_layer().parameters()) == 789_760
    attention = [layer for layer in graph.layers if layer.kind == ir.ATTENTION]
    assert len(attention) == 1 and T.terms(attention[0])[T.ATTN] == 2 * 8 * 64 * 64 * 32


def test_parameters_outside_layers_become_rows():
    model = modern.einsum_attention()
    graph, total = reference(model, (1, 3, 16, 16))
    rows = {layer.name: layer for layer in graph.layers if layer.kind == ir.PARAMETER}
    assert set(rows) == {"cls_token", "pos_embed", "gamma", "norm_weight", "mix", "aux_head.weight", "aux_head.bias"}
    assert rows["cls_token"].params == 32 and rows["pos_embed"].params == 17 * 32 and rows["mix"].params == 32 * 32
    assert rows["gamma"].attr("executed") and not rows["aux_head.weight"].attr("executed")
    assert total.params == sum(p.numel() for p in model.parameters()) == 8_116


def test_modern_model_macc_by_hand():
    # 16 patches of 4x4x3 -> 32: 16*48*32; 17 tokens: qkv 17*32*96, QK^T and AV 4 heads * 17*17*8 each,
    # proj 17*32*32, the bare-parameter matmul 17*32*32, head 32*10
    by_hand = 16 * 48 * 32 + 17 * 32 * 96 + 2 * 4 * 17 * 17 * 8 + 17 * 32 * 32 + 17 * 32 * 32 + 32 * 10
    for factory in (modern.einsum_attention, modern.sdpa_attention, modern.window_attention_model):
        graph, total = reference(factory(), (1, 3, 16, 16))
        assert total.macc == by_hand == 130_432, factory.__name__
        kinds = {layer.kind for layer in graph.layers}
        assert ir.UNKNOWN not in kinds and ir.GAP not in kinds
        assert {ir.LAYER_NORM, ir.REDUCE_MEAN, ir.MATMUL} <= kinds


def test_attention_written_four_ways_has_the_same_attn_terms():
    attn = lambda graph: sum(T.terms(layer)[T.ATTN] for layer in graph.layers)
    expected = 2 * 4 * 17 * 17 * 8  # heads x queries x keys x head dim, for QK^T and for AV
    for factory in (modern.einsum_attention, modern.sdpa_attention, modern.window_attention_model):
        assert attn(reference(factory(), (1, 3, 16, 16))[0]) == expected, factory.__name__

    class MHA(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(32, 4, batch_first=True)

        def forward(self, x):
            return self.attn(x, x, x, need_weights=False)[0]

    assert attn(reference(MHA(), (1, 17, 32))[0]) == expected


def test_causal_sdpa_counts_the_full_product_and_names_the_causal_half():
    class Causal(nn.Module):
        def forward(self, q):
            return F.scaled_dot_product_attention(q, q, q, is_causal=True)

    graph, total = reference(Causal(), (1, 4, 17, 8))
    [sdpa] = [layer for layer in graph.layers if layer.kind == ir.SDPA]
    values = T.terms(sdpa)
    assert values[T.ATTN] == 2 * 4 * 17 * 17 * 8 == total.macc
    # query i sees keys 0..i: 1 + 2 + ... + 17 = 153 pairs per head
    assert values[T.ATTN_CAUSAL] == 2 * 4 * (17 * 18 // 2) * 8 and sdpa.attr("causal")


def test_a_layer_that_does_more_than_its_type_leaves_a_gap_row():
    class TwiceLinear(nn.Linear):
        def forward(self, x):  # typed as a Linear, runs two products
            return super().forward(super().forward(x))

    class Untraceable(nn.Module):  # data-dependent control flow: read through module calls, not torch.fx
        def __init__(self):
            super().__init__()
            self.fc = TwiceLinear(8, 8, bias=False)

        def forward(self, x):
            return self.fc(x) if x.sum() >= 0 else x

    graph, total = reference(Untraceable(), (1, 8))
    assert graph.layer("fc").kind == ir.LINEAR
    [gap] = [layer for layer in graph.layers if layer.kind == ir.GAP]
    assert T.terms(gap)[T.MACC] == 8 * 8 and total.macc == 2 * 8 * 8
    assert "conservation gap" in graph.notes[-1] and "executed 128" in graph.notes[-1].replace(",", "")


def test_a_conv_subclass_that_transposes_its_input_counts_the_channels_it_convolves():
    """transformers' LasrEncoderCTCHead: an nn.Conv1d whose forward takes (batch, frames, channels) and transposes
    it. 12 input channels, 5 output channels, kernel 1, 7 frames: MACC = 7 x 5 x 12 x 1 = 420; params =
    5 x 12 x 1 + 5 = 65. Read from the module call's shape, 7 frames would be taken as input channels."""
    class FramesFirstConv(nn.Conv1d):
        def forward(self, x):
            return super().forward(x.transpose(1, 2)).transpose(1, 2)

    class Head(nn.Module):  # data-dependent control flow: read through module calls, not torch.fx
        def __init__(self):
            super().__init__()
            self.head = FramesFirstConv(12, 5, kernel_size=1)

        def forward(self, x):
            return self.head(x) if x.sum() >= 0 else x

    graph, total = reference(Head(), (1, 7, 12))
    assert graph.layer("head").kind == ir.CONV
    assert not [layer for layer in graph.layers if layer.kind == ir.GAP]
    assert T.terms(graph.layer("head"))[T.MACC] == 7 * 5 * 12 * 1 == total.macc
    assert total.params == 5 * 12 * 1 + 5


def test_multihead_attention_called_with_keywords_is_read_through_its_ops():
    """mask2former calls nn.MultiheadAttention(query=, key=, value=): no positional input to type it by. 5 tokens,
    width 8, 2 heads: in_proj 3 x 5 x 8 x 8 = 960, QK^T 5 x 5 x 8 = 200, AV 200, out_proj 5 x 8 x 8 = 320; 1,680
    multiply-accumulates. Params: in_proj 3 x 8 x 8 + 24, out_proj 8 x 8 + 8 = 288."""
    class KeywordAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

        def forward(self, x):
            return self.attn(query=x, key=x, value=x, need_weights=False)[0] if x.sum() >= 0 else x

    graph, total = reference(KeywordAttention(), (1, 5, 8))
    assert not [layer for layer in graph.layers if layer.kind in (ir.GAP, ir.UNKNOWN)]
    products = sum(T.terms(layer)[T.MACC] + T.terms(layer)[T.ATTN] for layer in graph.layers)
    assert products == 960 + 200 + 200 + 320
    assert total.params == 3 * 8 * 8 + 24 + 8 * 8 + 8


def test_sequence_first_multihead_attention_counts_each_batch_once():
    """nn.MultiheadAttention's default layout is (seq, batch, embed) (bridgetower's vision tower). 5 tokens, batch
    2, width 8: per sample in_proj 3 x 5 x 8 x 8 = 960, QK^T and AV 5 x 5 x 8 = 200 each, out_proj 5 x 8 x 8 = 320;
    x 2 samples = 3,360 (the sequence axis taken as the batch: 5 x 1,680 = 8,400)."""
    class SeqFirst(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 2)

        def forward(self, x):
            return self.attn(x, x, x, need_weights=False)[0]

    graph, total = reference(SeqFirst(), (5, 2, 8))
    assert not [layer for layer in graph.layers if layer.kind in (ir.GAP, ir.UNKNOWN)]
    assert graph.layer("attn").kind == ir.ATTENTION
    terms = T.terms(graph.layer("attn"))
    assert terms[T.MACC] + terms[T.ATTN] == 2 * (960 + 200 + 200 + 320)


def test_a_functional_conv_with_a_buffer_filter_holds_no_parameters():
    """timm's anti-aliasing downsample (tresnet): F.conv2d with a fixed blur kernel registered as a buffer. A 1x1
    conv 3 -> 4 (12 weights + 4 biases = 16 parameters, 8 x 8 x 4 x 3 = 768 MACC), then the 3x3 depthwise blur
    over 4 channels at 8 x 8: 8 x 8 x 4 x 9 = 2,304 MACC and no parameters."""
    class Blur(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)
            self.register_buffer("filt", torch.ones(4, 1, 3, 3) / 9)

        def forward(self, x):
            return F.conv2d(self.conv(x), self.filt, padding=1, groups=4)

    model = Blur()
    graph, total = reference(model, (1, 3, 8, 8))
    assert not [layer for layer in graph.layers if layer.kind == ir.GAP]
    assert total.params == sum(p.numel() for p in model.parameters()) == 3 * 4 + 4
    assert total.macc == 8 * 8 * 4 * 3 + 8 * 8 * 4 * 9


def test_tied_weights_count_once():
    graph, total = reference(hf_zoo.build("gpt2", meta=True, n_layer=1), (1, 8), torch.long)
    model = hf_zoo.build("gpt2", meta=True, n_layer=1)
    assert total.params == model.num_parameters() == sum(p.numel() for p in model.parameters())
    head = graph.layer("lm_head")
    assert head.kind == ir.LINEAR and head.params == 0 and head.attr("shared_params") == 50257 * 768
