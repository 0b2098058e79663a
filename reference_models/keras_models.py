"""Reference models in Keras 3, twins of reference_models/torch_models.py with the same layer names.

Every factory takes the channels-first, torch-style input shape with batch (e.g. (1, 1, 28, 28)) and builds the
model channels_last (NHWC) with that batch fixed in `keras.Input`, so the layer IR and the TF profiler both see
concrete shapes. The Keras front end (reconcile.frontends.keras_ir) transposes the shapes back to NCHW.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402
from keras import layers  # noqa: E402


def _image_input(input_shape: tuple[int, ...], name: str = "data") -> keras.KerasTensor:
    n, c, *spatial = input_shape
    return keras.Input(shape=(*spatial, c), batch_size=n, name=name)


def lenet(input_shape: tuple[int, ...] = (1, 1, 28, 28)) -> keras.Model:
    """The document's TF LeNet (tf.layers.conv2d / max_pooling2d / dense, 'valid' padding), in Keras 3:
    conv1 20x24x24 -> pool1 -> conv2 50x8x8 -> pool2 -> flatten -> ip1 500 (fused relu, as the document's
    `tf.layers.dense(..., tf.nn.relu, name='ip1')`) -> ip2 10."""
    inputs = _image_input(input_shape)
    x = layers.Conv2D(20, 5, strides=1, padding="valid", name="conv1")(inputs)
    x = layers.MaxPooling2D(2, 2, name="pool1")(x)
    x = layers.Conv2D(50, 5, strides=1, padding="valid", name="conv2")(x)
    x = layers.MaxPooling2D(2, 2, name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(500, activation="relu", name="ip1")(x)
    outputs = layers.Dense(10, name="ip2")(x)
    return keras.Model(inputs, outputs, name="lenet")


def gconv(input_shape: tuple[int, ...] = (1, 8, 10, 10)) -> keras.Model:
    """Conv2d(8, 16, 3, groups=4) with bias."""
    inputs = _image_input(input_shape)
    return keras.Model(inputs, layers.Conv2D(16, 3, groups=4, name="gconv")(inputs), name="gconv")


def sepnet(input_shape: tuple[int, ...] = (1, 3, 32, 32)) -> keras.Model:
    """Twin of torch_models.SepNet. The 3x3/2 max pool uses padding 'same': TF pads (0, 1) where torch pads
    (1, 1); output shapes (and every count) agree, the IR `padding` field does not."""
    inputs = _image_input(input_shape)
    x = layers.Conv2D(16, 3, padding="same", use_bias=False, name="conv1")(inputs)
    x = layers.BatchNormalization(epsilon=1e-5, name="bn1")(x)
    x = layers.ReLU(name="relu1")(x)
    x = layers.MaxPooling2D(3, 2, padding="same", name="pool1")(x)
    x = layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = layers.Conv2D(32, 1, name="pw")(x)
    x = layers.GlobalAveragePooling2D(keepdims=True, name="gap")(x)  # torch AdaptiveAvgPool2d(1): (N, C, 1, 1)
    x = layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, layers.Dense(10, name="fc")(x), name="sepnet")


def mha(input_shape: tuple[int, ...] = (1, 16, 64)) -> keras.Model:
    """Self-attention, 4 heads of 16 over 64 features (torch nn.MultiheadAttention(64, 4))."""
    n, length, dim = input_shape
    inputs = keras.Input(shape=(length, dim), batch_size=n, name="data")
    return keras.Model(inputs, layers.MultiHeadAttention(4, dim // 4, name="attn")(inputs, inputs), name="mha")


def block(input_shape: tuple[int, ...] = (1, 16, 64)) -> keras.Model:
    """Pre-norm transformer block: x + MHA(LN(x)); x + fc2(GELU(fc1(LN(x)))), as torch_models.Block."""
    n, length, dim = input_shape
    inputs = keras.Input(shape=(length, dim), batch_size=n, name="data")
    h = layers.LayerNormalization(epsilon=1e-5, name="ln1")(inputs)
    x = layers.Add(name="residual1")([inputs, layers.MultiHeadAttention(4, dim // 4, name="attn")(h, h)])
    h = layers.Dense(256, name="fc1")(layers.LayerNormalization(epsilon=1e-5, name="ln2")(x))
    h = layers.Dense(dim, name="fc2")(layers.Activation("gelu", name="act")(h))
    return keras.Model(inputs, layers.Add(name="residual2")([x, h]), name="block")
