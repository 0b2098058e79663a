"""Netscope's counting rules (reconcile.adapters.netscope), checked against hand arithmetic of its source:
51c947a = assets/js/netscope.js (older analyzer), a5f7aa4 = src/analyzer.coffee (conv macc = (2n-1)*Hout*Wout*
Cout*batch/group + bias*Cout, n = kw*kh*Cin). Every expected number is written as that arithmetic."""
import textwrap

import pytest

from reconcile.adapters import netscope
from reconcile.models import ModelSpec, reference
from reconcile.records import Emitter

OLD, NEW = "51c947a", "a5f7aa4"


def run(spec) -> list:
    return netscope.count(spec, Emitter(spec.name, "caffe", "netscope", netscope.version()))


def table(records) -> dict:
    """(tool_version, layer, metric) -> value for ok rows."""
    return {(r.tool_version, r.layer, r.metric): r.value for r in records if r.status == "ok"}


def problems(records) -> dict:
    return {(r.tool_version, r.layer): r.message for r in records if r.status != "ok"}


def prototxt_spec(tmp_path, dims: tuple, body: str, first_line: str = 'name: "t"') -> ModelSpec:
    path = tmp_path / "net.prototxt"
    shape = " ".join(f"dim: {d}" for d in dims)
    path.write_text(f'{first_line}\ninput: "data"\ninput_shape {{ {shape} }}\n' + textwrap.dedent(body))
    return ModelSpec("t", dims, prototxt=path)


@pytest.fixture(scope="module")
def lenet():
    records = run(reference("lenet"))
    return records, table(records)


def test_version_names_both_rule_sets(lenet):
    records, _ = lenet
    assert netscope.version() == f"{OLD}+{NEW}"
    assert {r.tool_version for r in records} == {OLD, NEW}
    assert all(r.tool == "netscope" and r.framework == "caffe" for r in records)
    assert not problems(records)


def test_lenet_older_rules(lenet):
    _, t = lenet
    v = OLD
    assert t[v, "conv1", "macc"] == 5 * 5 * 24 * 24 * 1 * 20 == 288_000
    assert t[v, "conv1", "param"] == 5 * 5 * 1 * 20 == 500  # no bias
    assert t[v, "pool1", "comp"] == 12 * 12 * 2 * 2 * 20 == 11_520  # kernel area x output elements
    assert t[v, "conv2", "macc"] == 5 * 5 * 8 * 8 * 20 * 50 == 1_600_000
    assert t[v, "conv2", "param"] == 5 * 5 * 20 * 50 == 25_000
    assert t[v, "pool2", "comp"] == 4 * 4 * 2 * 2 * 50 == 3_200
    assert t[v, "ip1", "macc"] == 4 * 4 * 50 * 500 == 400_000
    assert t[v, "ip1", "param"] == 800 * 500 == 400_000  # no bias
    assert t[v, "relu1", "comp"] == 500  # relu1 is in place on ip1: 1x1x500
    assert t[v, "ip2", "macc"] == 500 * 10 == 5_000
    assert (v, "conv1", "comp") not in t  # zeros are not recorded


def test_lenet_later_rules(lenet):
    _, t = lenet
    v = NEW
    n1, n2 = 5 * 5 * 1, 5 * 5 * 20  # vector lengths kw*kh*Cin
    assert t[v, "conv1", "macc"] == (2 * n1 - 1) * 24 * 24 * 20 + 20 == 564_500
    assert t[v, "conv1", "param"] == 5 * 5 * 1 * 20 + 20 == 520
    assert t[v, "conv2", "macc"] == (2 * n2 - 1) * 8 * 8 * 50 + 50 == 3_196_850
    assert t[v, "conv2", "param"] == 5 * 5 * 20 * 50 + 50 == 25_050
    assert t[v, "ip1", "param"] == 800 * 500 + 500 == 400_500
    assert t[v, "ip1", "macc"] == 800 * 500 == 400_000  # inner product stays a MACC count
    assert t[v, "pool1", "comp"] == 11_520 and t[v, "relu1", "comp"] == 500


def test_lenet_totals_and_activation_memory(lenet):
    records, t = lenet
    activations = {"data": 28 * 28, "conv1": 20 * 24 * 24, "pool1": 20 * 12 * 12, "conv2": 50 * 8 * 8,
                   "pool2": 50 * 4 * 4, "ip1": 500, "relu1": 500, "ip2": 10}
    for layer, value in activations.items():
        assert t[NEW, layer, "activation"] == t[OLD, layer, "activation"] == value
    assert t[OLD, "__total__", "macc"] == 288_000 + 1_600_000 + 400_000 + 5_000
    assert t[NEW, "__total__", "macc"] == 564_500 + 3_196_850 + 400_000 + 5_000
    assert t[OLD, "__total__", "comp"] == t[NEW, "__total__", "comp"] == 11_520 + 3_200 + 500
    assert t[OLD, "__total__", "param"] == 500 + 25_000 + 400_000 + 5_000
    assert t[NEW, "__total__", "param"] == 520 + 25_050 + 400_500 + 5_010 == 431_080
    assert t[NEW, "__total__", "add"] == 0
    # Netscope's TOTAL starts from a copy of its first row (the input) and then adds every row: the 51c947a page
    # counts the input's activation twice; the later renderer resets activation first.
    assert t[OLD, "__total__", "activation"] == sum(activations.values()) + 28 * 28
    assert t[NEW, "__total__", "activation"] == sum(activations.values())
    total_row = next(r for r in records if r.tool_version == OLD and r.layer == "__total__"
                     and r.metric == "activation")
    assert "twice" in total_row.message


def test_pooling_rounds_up_without_caffes_padding_clip(tmp_path):
    records = run(prototxt_spec(tmp_path, (1, 3, 7, 7), """
        layer { name: "pool" type: "Pooling" bottom: "data" top: "pool"
                pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
        layer { name: "padded" type: "Pooling" bottom: "data" top: "padded"
                pooling_param { pool: AVE kernel_size: 2 stride: 2 pad: 1 } }
        layer { name: "gap" type: "Pooling" bottom: "data" top: "gap"
                pooling_param { pool: AVE global_pooling: true } }
    """))
    t = table(records)
    for v in (OLD, NEW):
        # ceil((7 - 2) / 2) + 1 = 4 (floor would give 3 -> 3*3*4*3 = 108)
        assert t[v, "pool", "comp"] == 4 * 4 * 2 * 2 * 3 == 192
        # ceil((7 + 2 - 2) / 2) + 1 = 5: Netscope keeps the window Caffe drops (Caffe's output is 4x4)
        assert t[v, "padded", "add"] == 5 * 5 * 2 * 2 * 3 == 300
        assert t[v, "padded", "activation"] == 5 * 5 * 3
        assert t[v, "gap", "add"] == 7 * 7 * 3 == 147  # global pooling: input elements
        assert t[v, "gap", "activation"] == 3


def test_grouped_dilated_conv_and_missing_bias(tmp_path):
    records = run(prototxt_spec(tmp_path, (1, 8, 10, 10), """
        layer { name: "g" type: "Convolution" bottom: "data" top: "g"
                convolution_param { num_output: 16 kernel_size: 3 group: 4 pad: 1 stride: 2 dilation: 2 } }
        layer { name: "nb" type: "Convolution" bottom: "data" top: "nb"
                convolution_param { num_output: 4 kernel_size: 1 bias_term: false } }
    """))
    t = table(records)
    # later: dilated kernel 5 -> floor((10 + 2 - 5) / 2) + 1 = 4; n = 3*3*8 = 72 (full Cin), /group on the product
    assert t[NEW, "g", "macc"] == (2 * 72 - 1) * 4 * 4 * 16 // 4 + 16 == 9_168
    assert t[NEW, "g", "param"] == 3 * 3 * 8 * 16 // 4 + 16 == 304
    # older: no dilation (floor((10 + 2 - 3) / 2) + 1 = 5), no group, no bias
    assert t[OLD, "g", "macc"] == 3 * 3 * 5 * 5 * 8 * 16 == 28_800
    assert t[OLD, "g", "param"] == 3 * 3 * 8 * 16 == 1_152
    assert t[NEW, "nb", "macc"] == (2 * 8 - 1) * 10 * 10 * 4 == 6_000  # no bias: no + Cout
    assert t[NEW, "nb", "param"] == 8 * 4 == 32


def test_eltwise_concat_batchnorm_scale_softmax(tmp_path):
    records = run(prototxt_spec(tmp_path, (2, 4, 6, 6), """
        layer { name: "a" type: "Convolution" bottom: "data" top: "a"
                convolution_param { num_output: 4 kernel_size: 1 } }
        layer { name: "b" type: "Convolution" bottom: "data" top: "b"
                convolution_param { num_output: 4 kernel_size: 1 } }
        layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "b" top: "sum" }
        layer { name: "prod" type: "Eltwise" bottom: "a" bottom: "b" top: "prod" eltwise_param { operation: PROD } }
        layer { name: "cat" type: "Concat" bottom: "sum" bottom: "prod" top: "cat" }
        layer { name: "bn" type: "BatchNorm" bottom: "cat" top: "cat" }
        layer { name: "scale" type: "Scale" bottom: "cat" top: "cat" scale_param { bias_term: true } }
        layer { name: "prob" type: "Softmax" bottom: "cat" top: "prob" }
    """))
    t = table(records)
    half, full = 6 * 6 * 4, 6 * 6 * 8  # per sample: one branch, the concat
    for v, batch in ((NEW, 2), (OLD, 1)):  # the older analyzer has no batch
        assert t[v, "sum", "add"] == half * batch
        assert t[v, "prod", "add"] == half * batch and (v, "prod", "macc") not in t  # read as SUM (see below)
        assert t[v, "cat", "activation"] == full * batch and (v, "cat", "add") not in t
        assert t[v, "bn", "add"] == t[v, "bn", "div"] == full * batch
        assert t[v, "bn", "param"] == 2 * 8
        assert t[v, "scale", "macc"] == full * batch and (v, "scale", "param") not in t  # Scale: no params
        assert t[v, "prob", "exp"] == t[v, "prob", "add"] == t[v, "prob", "div"] == full * batch
    prod = next(r for r in records if r.layer == "prod" and r.metric == "add")
    assert "n.eltwise_param" in prod.message


def test_unknown_layer_type_is_unsupported_and_so_is_what_it_feeds(tmp_path):
    records = run(prototxt_spec(tmp_path, (1, 1, 8, 8), """
        layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
                convolution_param { num_output: 2 kernel_size: 3 } }
        layer { name: "odd" type: "MyCustomLayer" bottom: "conv1" top: "odd" }
        layer { name: "fc" type: "InnerProduct" bottom: "odd" top: "fc" inner_product_param { num_output: 3 } }
    """))
    bad = problems(records)
    for v in (OLD, NEW):
        assert "MyCustomLayer" in bad[v, "odd"] and "no rule" in bad[v, "odd"]
        assert "'odd' could not be analysed" in bad[v, "fc"]
    unsupported = [r for r in records if r.status == "unsupported"]
    assert all(r.value is None and r.layer_kind in ("unknown", "linear") for r in unsupported)
    t = table(records)
    assert t[NEW, "__total__", "macc"] == (2 * 9 - 1) * 6 * 6 * 2 + 2  # conv1 only
    total = next(r for r in records if r.tool_version == NEW and r.layer == "__total__" and r.metric == "macc")
    assert "odd, fc" in total.message


def test_input_layer_only_in_the_later_analyzer(tmp_path):
    path = tmp_path / "input.prototxt"
    path.write_text(textwrap.dedent("""
        name: "t"
        layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
        layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
                convolution_param { num_output: 4 kernel_size: 3 bias_term: false } }
    """))
    records = run(ModelSpec("t", (1, 3, 8, 8), prototxt=path))
    t, bad = table(records), problems(records)
    assert t[NEW, "data", "activation"] == 3 * 8 * 8
    assert t[NEW, "conv", "macc"] == (2 * 27 - 1) * 6 * 6 * 4 == 7_632  # n = 3*3*3
    assert "'Input'" in bad[OLD, "data"] and (OLD, "conv") in bad  # 51c947a knows only 'data'


def test_a_file_opening_with_a_layer_loses_it(tmp_path):
    path = tmp_path / "headless.prototxt"
    path.write_text('layer { name: "data" type: "Input" top: "data" '
                    'input_param { shape { dim: 1 dim: 1 dim: 4 dim: 4 } } }\n'
                    'layer { name: "relu" type: "ReLU" bottom: "data" top: "relu" }\n')
    bad = problems(run(ModelSpec("t", (1, 1, 4, 4), prototxt=path)))
    assert "header" in bad[NEW, "data"]  # Netscope's parser takes the first block for the net header
    assert "could not be analysed" in bad[NEW, "relu"]


def test_model_without_prototxt_is_skipped():
    (record,) = run(reference("gconv"))
    assert record.status == "skipped" and "prototxt" in record.message
