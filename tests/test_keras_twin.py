"""The Keras front end: the Keras twins have the torch IR, layer by layer (names, kinds, NCHW shapes, params)."""
from __future__ import annotations

import importlib.util

import pytest

from reconcile.models import ModelSpec, layer_ir, reference

# TensorFlow is imported by the tests that build Keras models, never at collection (make test-fast imports no TF)
pytestmark = [pytest.mark.slow, pytest.mark.tensorflow,
              pytest.mark.skipif(importlib.util.find_spec("keras") is None, reason="keras is not installed")]

FIELDS = ("name", "kind", "input_shapes", "output_shape", "kernel", "stride", "padding", "dilation", "groups", "bias",
          "params")


def twin_ir(name: str, fields=FIELDS):
    spec = reference(name)
    return layer_ir(spec, "torch"), layer_ir(spec, "keras")


def assert_same(torch_ir, keras_model_ir, fields=FIELDS):
    assert [lay.name for lay in keras_model_ir.layers] == [lay.name for lay in torch_ir.layers]
    for t, k in zip(torch_ir.layers, keras_model_ir.layers):
        for f in fields:
            assert getattr(k, f) == getattr(t, f), f"{t.name}.{f}: keras {getattr(k, f)} != torch {getattr(t, f)}"


def test_lenet_keras_ir_equals_torch_ir():
    torch_ir, keras_model_ir = twin_ir("lenet")
    assert keras_model_ir.framework == "keras"
    assert [lay.name for lay in keras_model_ir.layers] == ["conv1", "pool1", "conv2", "pool2", "ip1", "relu1", "ip2"]
    assert_same(torch_ir, keras_model_ir)


def test_lenet_keras_shapes_and_params_by_hand():
    ir_ = layer_ir(reference("lenet"), "keras")
    out = {lay.name: lay.output_shape for lay in ir_.layers}
    # NCHW: 28-5+1 = 24, /2 = 12, 12-5+1 = 8, /2 = 4; flatten 50*4*4 = 800
    assert out == {"conv1": (1, 20, 24, 24), "pool1": (1, 20, 12, 12), "conv2": (1, 50, 8, 8),
                   "pool2": (1, 50, 4, 4), "ip1": (1, 500), "relu1": (1, 500), "ip2": (1, 10)}
    assert ir_.layer("ip1").input_shapes == ((1, 800),)
    params = {lay.name: lay.params for lay in ir_.layers}
    # conv1 5*5*1*20 + 20 = 520; conv2 5*5*20*50 + 50 = 25,050; ip1 800*500 + 500 = 400,500; ip2 500*10 + 10 = 5,010
    assert params == {"conv1": 520, "pool1": 0, "conv2": 25_050, "pool2": 0, "ip1": 400_500, "relu1": 0,
                      "ip2": 5_010}
    assert ir_.params == 431_080
    relu = ir_.layer("relu1")
    assert (relu.kind, relu.op, relu.attr("fused_with")) == ("act", "relu", "ip1")


def test_lenet_keras_batch_4():
    ir_ = layer_ir(reference("lenet", batch=4), "keras")
    assert ir_.layer("conv1").input_shapes == ((4, 1, 28, 28),)
    assert ir_.layer("ip2").output_shape == (4, 10)


@pytest.mark.parametrize("name", ["gconv", "mha", "block"])
def test_other_twins_equal_torch_ir(name):
    assert_same(*twin_ir(name))


def test_sepnet_twin_equal_but_pool_padding():
    # TF 'same' padding puts the odd pad at the end: 3x3/2 on 32 -> total pad (16-1)*2+3-32 = 1 -> (0, 1), where
    # torch pads (1, 1). Output 16x16 either way, so every count agrees; only the padding field differs.
    torch_ir, keras_model_ir = twin_ir("sepnet")
    assert_same(torch_ir, keras_model_ir, tuple(f for f in FIELDS if f != "padding"))
    pool = keras_model_ir.layer("pool1")
    assert pool.padding == (0, 0) and pool.attr("padding_end") == (1, 1)
    assert keras_model_ir.layer("bn1").params == 32 and keras_model_ir.layer("bn1").attr("buffers") == 32
    assert keras_model_ir.layer("dw").groups == 16  # DepthwiseConv2D: one group per input channel


def _ir(build, shape):
    import keras

    inputs = keras.Input(shape=shape[1:], batch_size=shape[0])
    from reconcile.frontends import keras_ir

    return keras_ir.from_model(keras.Model(inputs, build(inputs)), shape).layers


def test_conv_same_padding_stride_and_dilation():
    from keras import layers

    # 15 wide, k3 s2 'same': out ceil(15/2) = 8, total pad (8-1)*2 + 3 - 15 = 2 -> (1, 1)
    (conv,) = _ir(lambda x: layers.Conv2D(4, 3, strides=2, padding="same", name="c")(x), (1, 15, 15, 3))
    assert (conv.input_shapes, conv.output_shape) == (((1, 3, 15, 15),), (1, 4, 8, 8))
    assert (conv.stride, conv.padding, conv.attr("padding_end")) == ((2, 2), (1, 1), None)
    # dilation 2, k3 valid on 16: effective kernel 5, out 12; params 3*3*3*4 + 4 = 112
    (conv,) = _ir(lambda x: layers.Conv2D(4, 3, dilation_rate=2, name="c")(x), (1, 16, 16, 3))
    assert (conv.output_shape, conv.dilation, conv.padding, conv.params) == ((1, 4, 12, 12), (2, 2), (0, 0), 112)


def test_dense_on_3d_input_and_unknown_layer():
    from keras import layers

    dense, up = _ir(lambda x: layers.UpSampling1D(2, name="up")(layers.Dense(3, name="d")(x)), (2, 5, 7))
    # Dense on (N, L, F) keeps the batch_first layout, like torch nn.Linear; params 7*3 + 3 = 24
    assert (dense.kind, dense.input_shapes, dense.output_shape, dense.params) == ("linear", ((2, 5, 7),),
                                                                                 (2, 5, 3), 24)
    assert up.kind == "unknown"  # kept, never dropped


def test_sequential_model_is_walked():
    import keras
    from keras import layers

    from reconcile.frontends import keras_ir

    model = keras.Sequential([keras.Input((8, 8, 2), batch_size=1), layers.Conv2D(4, 3, name="c", activation="relu"),
                              layers.GlobalAveragePooling2D(name="gap")])
    conv, relu, gap = keras_ir.from_model(model, (1, 2, 8, 8)).layers
    assert (conv.output_shape, relu.name, gap.kind, gap.kernel, gap.output_shape) == (
        (1, 4, 6, 6), "c/relu", "pool_avg", (6, 6), (1, 4))


def test_keras_spec_without_twin_is_a_user_error():
    from reconcile.errors import UserError

    with pytest.raises(UserError, match="no Keras twin"):
        layer_ir(ModelSpec("x", (1, 1, 4, 4)), "keras")
