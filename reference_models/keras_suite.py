"""Keras 3 twins of the separating models (torch_models.py: sepnet, gconv, mha, block; torch_suite.py: resblock).

Same layer names as the torch modules (or as the registry's aliases of torch.fx node names), equal parameters layer
by layer, and the same IR in NCHW terms (reconcile.frontends.keras_ir transposes NHWC back). Every factory takes the
torch-style input shape with batch and fixes that batch in `keras.Input`, so the TF profiler sees concrete shapes.

Known differences, none of which changes a count:
- TF 'same' padding puts an odd pad pixel at the end (sepnet's 3x3/2 max pool pads (0, 1) where torch pads (1, 1));
  the output shapes agree, the IR `padding` field does not.
- MultiHeadAttention (mha, block): Keras keeps per-head kernels (query/key/value (64, 4, 16) + bias (4, 16), output
  (4, 16, 64) + bias (64)) where torch packs `in_proj_weight` (192, 64) + `in_proj_bias` (192) and `out_proj`
  (64, 64) + (64): the parameter count is the same (16,640), the layout is not, so weights cannot be copied
  tensor by tensor. Keras computes Q K^T and A V with einsum (which the TF profiler counts as 0) and scales the
  query before the product where torch's SDPA scales the scores.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402
from keras import layers  # noqa: E402

BN_EPSILON = 1e-5  # torch's default (Keras' is 1e-3): no count depends on it, but twins should compute alike


def image_input(input_shape: tuple[int, ...], name: str = "data") -> keras.KerasTensor:
    """NCHW shape with batch -> a fixed-batch NHWC keras.Input."""
    n, c, *spatial = input_shape
    return keras.Input(shape=(*spatial, c), batch_size=n, name=name)


def sequence_input(input_shape: tuple[int, ...], name: str = "data") -> keras.KerasTensor:
    n, length, dim = input_shape
    return keras.Input(shape=(length, dim), batch_size=n, name=name)


def batch_norm(name: str) -> layers.Layer:
    return layers.BatchNormalization(epsilon=BN_EPSILON, name=name)


def sepnet(input_shape: tuple[int, ...] = (1, 3, 32, 32)) -> keras.Model:
    """conv1 (no bias) + bn1 + relu1, pool1 3x3/2 max, dw (depthwise 3x3, bias) + pw (1x1), gap, fc."""
    inputs = image_input(input_shape)
    x = layers.Conv2D(16, 3, padding="same", use_bias=False, name="conv1")(inputs)
    x = layers.ReLU(name="relu1")(batch_norm("bn1")(x))
    x = layers.MaxPooling2D(3, 2, padding="same", name="pool1")(x)
    x = layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = layers.Conv2D(32, 1, name="pw")(x)
    x = layers.GlobalAveragePooling2D(keepdims=True, name="gap")(x)  # torch AdaptiveAvgPool2d(1): (N, C, 1, 1)
    x = layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, layers.Dense(10, name="fc")(x), name="sepnet")


def gconv(input_shape: tuple[int, ...] = (1, 8, 10, 10)) -> keras.Model:
    """Conv2d(8, 16, 3, groups=4) with bias."""
    inputs = image_input(input_shape)
    return keras.Model(inputs, layers.Conv2D(16, 3, groups=4, name="gconv")(inputs), name="gconv")


def _attention(dim: int, heads: int, name: str) -> layers.Layer:
    return layers.MultiHeadAttention(heads, dim // heads, name=name)


def mha(input_shape: tuple[int, ...] = (1, 16, 64)) -> keras.Model:
    """Self-attention, 4 heads of 16 over 64 features (torch nn.MultiheadAttention(64, 4, batch_first=True))."""
    inputs = sequence_input(input_shape)
    return keras.Model(inputs, _attention(input_shape[-1], 4, "attn")(inputs, inputs), name="mha")


def block(input_shape: tuple[int, ...] = (1, 16, 64)) -> keras.Model:
    """Pre-norm transformer block: x + attn(ln1(x)); x + fc2(act(fc1(ln2(x)))); exact (erf) GELU as torch's."""
    dim = input_shape[-1]
    inputs = sequence_input(input_shape)
    h = layers.LayerNormalization(epsilon=BN_EPSILON, name="ln1")(inputs)
    x = layers.Add(name="residual1")([inputs, _attention(dim, 4, "attn")(h, h)])
    h = layers.Dense(4 * dim, name="fc1")(layers.LayerNormalization(epsilon=BN_EPSILON, name="ln2")(x))
    h = layers.Dense(dim, name="fc2")(layers.Activation("gelu", name="act")(h))
    return keras.Model(inputs, layers.Add(name="residual2")([x, h]), name="block")


def resblock(input_shape: tuple[int, ...] = (1, 3, 16, 16)) -> keras.Model:
    """Twin of torch_suite.ResBlock; the residual add is a named `Add` layer (torch: functional `+=`, aliased)."""
    inputs = image_input(input_shape)
    x = layers.Conv2D(8, 3, padding="same", use_bias=False, name="conv1")(inputs)
    identity = layers.ReLU(name="relu1")(batch_norm("bn1")(x))
    x = layers.Conv2D(8, 3, padding="same", use_bias=False, name="conv2")(identity)
    x = layers.ReLU(name="relu2")(batch_norm("bn2")(x))
    x = batch_norm("bn3")(layers.Conv2D(8, 3, padding="same", use_bias=False, name="conv3")(x))
    x = layers.ReLU(name="relu3")(layers.Add(name="residual")([x, identity]))
    x = layers.AveragePooling2D(3, 2, name="pool")(x)
    # torch flattens NCHW, Keras NHWC: the FC sees the same 392 features in another order (same counts)
    x = layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, layers.Dense(10, name="fc")(x), name="resblock")
