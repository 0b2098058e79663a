"""The document's formulas on hand-computed layers. Every expected number is written as the arithmetic of the
document's formulas (docs/document.md: param = k*c_in/G*c_out + c_out, macc = k*c_in/G*c_out*H*W,
FLOPs = (2*k*c_in/G*c_out + c_out)*H*W), never produced by the code under test."""
import torch.nn as nn

from conventions import layer_counts, model_counts
from conventions import terms as T
from conventions.terms import terms
from reconcile.frontends.torch_ir import from_module


def only_layer(module, shape):
    model = from_module(module, shape)
    assert len(model.layers) == 1, model.layers
    return model.layers[0]


def test_lenet_matches_the_document():
    from reconcile.models import layer_ir, reference

    counts = {layer.name if layer else "__total__": c for layer, c in model_counts(layer_ir(reference("lenet")))}
    assert (counts["conv1"].params, counts["conv1"].macc, counts["conv1"].flops) == (
        5 * 5 * 1 * 20 + 20, 5 * 5 * 1 * 20 * 24 * 24, 2 * 5 * 5 * 1 * 20 * 24 * 24 + 20 * 24 * 24)  # 520/288k/587,520
    assert counts["pool1"].flops == 20 * 24 * 24 == 11_520
    assert (counts["conv2"].params, counts["conv2"].macc, counts["conv2"].flops) == (
        5 * 5 * 20 * 50 + 50, 5 * 5 * 20 * 50 * 8 * 8, 2 * 1_600_000 + 50 * 8 * 8)  # 25,050 / 1.6M / 3,203,200
    assert counts["pool2"].flops == 50 * 8 * 8 == 3_200
    assert (counts["ip1"].params, counts["ip1"].macc, counts["ip1"].flops) == (800 * 500 + 500, 800 * 500,
                                                                             2 * 800 * 500 + 500)
    assert (counts["ip2"].params, counts["ip2"].macc, counts["ip2"].flops) == (500 * 10 + 10, 5_000, 10_010)
    assert counts["__total__"].params == 520 + 25_050 + 400_500 + 5_010 == 431_080
    # the ReLU has no document formula: None, never 0
    assert counts["relu1"].flops is None and "no document formula" in counts["relu1"].note


def test_grouped_conv():
    layer = only_layer(nn.Conv2d(8, 16, 3, groups=4), (1, 8, 10, 10))
    c = layer_counts(layer)
    assert layer.output_shape == (1, 16, 8, 8)
    assert c.params == 3 * 3 * (8 // 4) * 16 + 16 == 304
    assert c.macc == 3 * 3 * (8 // 4) * 16 * 8 * 8 == 18_432
    assert c.flops == (2 * 3 * 3 * (8 // 4) * 16 + 16) * 8 * 8 == 37_888


def test_depthwise_plus_pointwise():
    dw = layer_counts(only_layer(nn.Conv2d(16, 16, 3, padding=1, groups=16), (1, 16, 16, 16)))
    pw = layer_counts(only_layer(nn.Conv2d(16, 32, 1), (1, 16, 16, 16)))
    assert (dw.params, dw.macc) == (3 * 3 * 1 * 16 + 16, 3 * 3 * 1 * 16 * 16 * 16)  # 160, 36,864
    assert (pw.params, pw.macc) == (1 * 1 * 16 * 32 + 32, 16 * 32 * 16 * 16)  # 544, 131,072
    standard = layer_counts(only_layer(nn.Conv2d(16, 32, 3, padding=1), (1, 16, 16, 16)))
    # the DW+PW saving the document's section is about: 167,936 vs 1,179,648 MACC
    assert dw.macc + pw.macc == 36_864 + 131_072 and standard.macc == 3 * 3 * 16 * 32 * 16 * 16


def test_stride_two_with_padding():
    layer = only_layer(nn.Conv2d(3, 8, 3, stride=2, padding=1), (1, 3, 9, 9))
    assert layer.output_shape == (1, 8, 5, 5)  # floor((9 + 2*1 - 3) / 2) + 1 = 5
    c = layer_counts(layer)
    assert c.macc == 3 * 3 * 3 * 8 * 5 * 5 == 5_400
    assert c.flops == (2 * 3 * 3 * 3 * 8 + 8) * 5 * 5 == 11_000


def test_dilation_two():
    layer = only_layer(nn.Conv2d(2, 4, 3, dilation=2), (1, 2, 10, 10))
    assert layer.output_shape == (1, 4, 6, 6)  # effective kernel 2*(3-1)+1 = 5: 10 - 5 + 1 = 6
    c = layer_counts(layer)
    assert (c.params, c.macc) == (3 * 3 * 2 * 4 + 4, 3 * 3 * 2 * 4 * 6 * 6)  # dilation changes no count per output


def test_conv_without_bias_has_no_bias_term():
    c = layer_counts(only_layer(nn.Conv2d(3, 16, 3, padding=1, bias=False), (1, 3, 32, 32)))
    assert c.params == 3 * 3 * 3 * 16 == 432
    assert c.macc == 432 * 32 * 32 == 442_368
    assert c.flops == 2 * 442_368  # no "+ c_out" per position


def test_conv1d():
    layer = only_layer(nn.Conv1d(4, 6, 3), (1, 4, 10))
    assert layer.output_shape == (1, 6, 8)
    c = layer_counts(layer)
    assert (c.params, c.macc, c.flops) == (3 * 4 * 6 + 6, 3 * 4 * 6 * 8, (2 * 3 * 4 * 6 + 6) * 8)  # 78, 576, 1,200


def test_pool_where_input_and_window_readings_differ():
    layer = only_layer(nn.MaxPool2d(3, stride=2, padding=1), (1, 16, 32, 32))
    assert layer.output_shape == (1, 16, 16, 16)
    t = terms(layer)
    assert t[T.IN] == 16 * 32 * 32 == 16_384
    assert t[T.WINDOW] == 3 * 3 * 16 * 16 * 16 == 36_864
    c = layer_counts(layer)
    assert c.flops == 16_384 and "36,864" in c.note  # the ambiguity is stated, not hidden


def test_pool_readings_coincide_for_2x2_stride_2():
    t = terms(only_layer(nn.MaxPool2d(2, 2), (1, 20, 24, 24)))
    assert t[T.IN] == t[T.WINDOW] == 20 * 24 * 24


def test_linear_on_tokens_counts_every_row():
    layer = only_layer(nn.Linear(64, 256), (1, 16, 64))
    assert terms(layer)[T.MACC] == 16 * 64 * 256 == 262_144


def test_counts_scale_with_batch():
    c1 = layer_counts(only_layer(nn.Conv2d(1, 20, 5), (1, 1, 28, 28)))
    c4 = layer_counts(only_layer(nn.Conv2d(1, 20, 5), (4, 1, 28, 28)))
    assert c4.macc == 4 * 288_000 and c4.flops == 4 * 587_520 and c4.params == c1.params == 520


def test_attention_and_functional_ops_are_seen():
    from reconcile.models import layer_ir, reference

    block = layer_ir(reference("block"))
    kinds = {layer.name: layer.kind for layer in block.layers}
    assert kinds == {"ln1": "layer_norm", "attn": "attention", "residual1": "add", "ln2": "layer_norm",
                     "fc1": "linear", "act": "act", "fc2": "linear", "residual2": "add"}
    attn = terms(block.layer("attn"))
    # 4 projections 16 tokens x 64 x 64 each, Q K^T and A V 16 x 16 x 64 each
    assert attn[T.MACC] == 4 * 16 * 64 * 64 == 262_144
    assert attn[T.ATTN] == 2 * 16 * 16 * 64 == 32_768
    assert block.params == 2 * 64 + (3 * 64 * 64 + 3 * 64 + 64 * 64 + 64) + 2 * 64 + (64 * 256 + 256) + (256 * 64 + 64)
    assert layer_counts(block.layer("ln1")).flops is None


def test_shared_module_params_counted_once():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return self.fc(self.fc(x))

    model = from_module(Twice(), (1, 4))
    assert [(layer.name, layer.params) for layer in model.layers] == [("fc", 4 * 4 + 4), ("fc#2", 0)]
