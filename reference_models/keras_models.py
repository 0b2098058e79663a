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
