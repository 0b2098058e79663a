"""Keras 3 twins of reference_models/published_models.py, and the `keras.applications` networks that differ.

Twins: same layers, same parameters layer by layer, same NCHW shapes in the IR, and layer names that the Keras front
end maps to the torch names. Keras names are the torch names except where torch calls one module several times
(torchvision's `relu` in a residual block): a Keras layer called twice is listed by the front end next to its
first call, not in execution order, so the twins use one ReLU layer per call, named `<block>.relu`,
`<block>.relu_2`, `<block>.relu_3`, and the registry aliases `_2` -> `#2` (torch_ir's name for a module's second
call). Padding: torch pads explicitly; Keras 'same' gives the same output sizes (TF puts an odd pad pixel at the
end, so the IR `padding` field differs on stride-2 layers), and AlexNet's 11x11/4 conv, which 'same' cannot
express (224 -> 56, not 55), gets an explicit ZeroPadding2D layer (`features.0.pad`).

`keras.applications` builds (always weights=None: no downloads here):
- resnet50_keras_app: `keras.applications.ResNet50`: ResNet-50 v1 (stride in the first 1x1, like resnet50_v1),
  but every conv has a bias (+26,560 parameters: 25,583,592 trainable vs 25,557,032), BN epsilon 1.001e-5,
  explicit ZeroPadding2D before conv1 and the max pool, Keras names (conv1_conv, conv2_block1_1_conv, ...) and a
  softmax fused into the last Dense.
- mobilenet_v2_keras_app: `keras.applications.MobileNetV2` (alpha 1.0): the same layers and parameters as
  torchvision's MobileNetV2 (3,504,872 trainable), but ZeroPadding2D + 'valid' before each stride-2 depthwise
  conv, Keras names (Conv1, expanded_conv_depthwise, block_1_expand, ...) and a fused softmax.
"""
from __future__ import annotations

from typing import Callable

from .keras_suite import batch_norm, image_input, keras, layers
from .naming import (MOBILENET_V1_BLOCKS, RESNET18_DEPTHS, RESNET50_DEPTHS, RESNET_STAGES, VGG16_CFG,
                     mobilenet_v2_blocks)

KTensor = keras.KerasTensor


def relu_call_name(block: str, call: int) -> str:
    """The Keras name of the `call`-th ReLU of a torch block whose one `relu` module runs several times."""
    return f"{block}.relu" if call == 1 else f"{block}.relu_{call}"


# ------------------------------------------------------------------------------------------------------------ ResNet
def _conv(filters: int, kernel: int, stride: int, name: str, bias: bool = False) -> layers.Layer:
    # 1x1 convs and stride-1 convs: 'valid' / 'same' reproduce torch's padding 0 / (k-1)/2 exactly
    padding = "valid" if kernel == 1 else "same"
    return layers.Conv2D(filters, kernel, stride, padding=padding, use_bias=bias, name=name)


def _basic_block(x: KTensor, name: str, width: int, stride: int) -> KTensor:
    c_in = x.shape[-1]
    out = batch_norm(f"{name}.bn1")(_conv(width, 3, stride, f"{name}.conv1")(x))
    out = layers.ReLU(name=relu_call_name(name, 1))(out)
    out = batch_norm(f"{name}.bn2")(_conv(width, 3, 1, f"{name}.conv2")(out))
    identity = x
    if stride != 1 or c_in != width:
        identity = batch_norm(f"{name}.downsample.1")(_conv(width, 1, stride, f"{name}.downsample.0")(x))
    return layers.ReLU(name=relu_call_name(name, 2))(layers.Add(name=f"{name}.add")([out, identity]))


def _bottleneck(x: KTensor, name: str, width: int, stride: int, stride_in_1x1: bool) -> KTensor:
    c_in = x.shape[-1]
    s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
    out = batch_norm(f"{name}.bn1")(_conv(width, 1, s1, f"{name}.conv1")(x))
    out = layers.ReLU(name=relu_call_name(name, 1))(out)
    out = batch_norm(f"{name}.bn2")(_conv(width, 3, s3, f"{name}.conv2")(out))
    out = layers.ReLU(name=relu_call_name(name, 2))(out)
    out = batch_norm(f"{name}.bn3")(_conv(width * 4, 1, 1, f"{name}.conv3")(out))
    identity = x
    if stride != 1 or c_in != width * 4:
        identity = batch_norm(f"{name}.downsample.1")(_conv(width * 4, 1, stride, f"{name}.downsample.0")(x))
    return layers.ReLU(name=relu_call_name(name, 3))(layers.Add(name=f"{name}.add")([out, identity]))


def _resnet(input_shape: tuple[int, ...], block: Callable[..., KTensor], depths: tuple[int, ...], name: str) \
        -> keras.Model:
    inputs = image_input(input_shape)
    x = layers.ReLU(name="relu")(batch_norm("bn1")(_conv(64, 7, 2, "conv1")(inputs)))
    x = layers.MaxPooling2D(3, 2, padding="same", name="maxpool")(x)
    for (stage, width, stride), depth in zip(RESNET_STAGES, depths):
        for i in range(depth):
            x = block(x, f"{stage}.{i}", width, stride if i == 0 else 1)
    x = layers.GlobalAveragePooling2D(keepdims=True, name="avgpool")(x)  # torch AdaptiveAvgPool2d((1, 1))
    x = layers.Dense(1000, name="fc")(layers.Flatten(name="flatten")(x))
    return keras.Model(inputs, x, name=name)


def resnet18(input_shape: tuple[int, ...] = (1, 3, 224, 224)) -> keras.Model:
    return _resnet(input_shape, _basic_block, RESNET18_DEPTHS, "resnet18")


def resnet50_v1(input_shape: tuple[int, ...] = (1, 3, 224, 224)) -> keras.Model:
    block = lambda x, name, width, stride: _bottleneck(x, name, width, stride, stride_in_1x1=True)  # noqa: E731
    return _resnet(input_shape, block, RESNET50_DEPTHS, "resnet50_v1")


def resnet50_v15(input_shape: tuple[int, ...] = (1, 3, 224, 224)) -> keras.Model:
    block = lambda x, name, width, stride: _bottleneck(x, name, width, stride, stride_in_1x1=False)  # noqa: E731
    return _resnet(input_shape, block, RESNET50_DEPTHS, "resnet50_v15")


# ------------------------------------------------------------------------------------------------------------ VGG-16
def _classifier(x: KTensor, widths: tuple[int, ...], names: tuple[str, ...]) -> KTensor:
    """Dense layers with ReLU modules between them, torchvision's classifier indices (Dropout layers are skipped
    by both front ends, so they are left out here)."""
    for width, (dense_name, relu_name) in zip(widths, names):
        x = layers.Dense(width, name=dense_name)(x)
        if relu_name:
            x = layers.ReLU(name=relu_name)(x)
    return x


def vgg16(input_shape: tuple[int, ...] = (1, 3, 224, 224)) -> keras.Model:
    """torchvision vgg16: features.0 .. features.30 (conv + separate ReLU layers), avgpool, classifier.0/.3/.6.
    torchvision's AdaptiveAvgPool2d((7, 7)) sees a 7x7 map at 224: a 1x1 average pool here, same shapes."""
    inputs = image_input(input_shape)
    x, index = inputs, 0
    for v in VGG16_CFG:
        if v == "M":
            x = layers.MaxPooling2D(2, 2, name=f"features.{index}")(x)
            index += 1
        else:
            x = layers.Conv2D(v, 3, padding="same", name=f"features.{index}")(x)
            x = layers.ReLU(name=f"features.{index + 1}")(x)
            index += 2
    x = layers.AveragePooling2D(1, 1, name="avgpool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = _classifier(x, (4096, 4096, 1000),
                    (("classifier.0", "classifier.1"), ("classifier.3", "classifier.4"), ("classifier.6", "")))
    return keras.Model(inputs, x, name="vgg16")


# ----------------------------------------------------------------------------------------------------------- AlexNet
def alexnet(input_shape: tuple[int, ...] = (1, 3, 224, 224)) -> keras.Model:
    """torchvision alexnet. conv1 is 11x11/4 with padding 2 (224 -> 55): ZeroPadding2D + 'valid'."""
    inputs = image_input(input_shape)
    x = layers.ZeroPadding2D(2, name="features.0.pad")(inputs)
    x = layers.ReLU(name="features.1")(layers.Conv2D(64, 11, 4, name="features.0")(x))
    x = layers.MaxPooling2D(3, 2, name="features.2")(x)
    x = layers.ReLU(name="features.4")(layers.Conv2D(192, 5, padding="same", name="features.3")(x))
    x = layers.MaxPooling2D(3, 2, name="features.5")(x)
    for conv, width in ((6, 384), (8, 256), (10, 256)):
        x = layers.Conv2D(width, 3, padding="same", name=f"features.{conv}")(x)
        x = layers.ReLU(name=f"features.{conv + 1}")(x)
    x = layers.MaxPooling2D(3, 2, name="features.12")(x)
    x = layers.AveragePooling2D(1, 1, name="avgpool")(x)  # torchvision AdaptiveAvgPool2d((6, 6)) on a 6x6 map
    x = layers.Flatten(name="flatten")(x)
    x = _classifier(x, (4096, 4096, 1000),
                    (("classifier.1", "classifier.2"), ("classifier.4", "classifier.5"), ("classifier.6", "")))
    return keras.Model(inputs, x, name="alexnet")


# ------------------------------------------------------------------------------------------------------- MobileNetV1
def _conv_bn_relu(x: KTensor, name: str, filters: int, kernel: int, stride: int, depthwise: bool = False,
                  relu_max: float | None = None, names: tuple[str, str, str] = ("conv", "bn", "relu")) -> KTensor:
    padding = "valid" if kernel == 1 else "same"
    if depthwise:
        conv = layers.DepthwiseConv2D(kernel, stride, padding=padding, use_bias=False, name=f"{name}.{names[0]}")
    else:
        conv = layers.Conv2D(filters, kernel, stride, padding=padding, use_bias=False, name=f"{name}.{names[0]}")
    x = batch_norm(f"{name}.{names[1]}")(conv(x))
    return layers.ReLU(relu_max, name=f"{name}.{names[2]}")(x)


def mobilenet_v1(input_shape: tuple[int, ...] = (1, 3, 224, 224)) -> keras.Model:
    inputs = image_input(input_shape)
    x = _conv_bn_relu(inputs, "conv1", 32, 3, 2)
    for i, (c_out, stride) in enumerate(MOBILENET_V1_BLOCKS):
        x = _conv_bn_relu(x, f"blocks.{i}.dw", 0, 3, stride, depthwise=True)
        x = _conv_bn_relu(x, f"blocks.{i}.pw", c_out, 1, 1)
    x = layers.AveragePooling2D(7, name="avgpool")(x)
    x = layers.Dense(1000, name="fc")(layers.Flatten(name="flatten")(x))
    return keras.Model(inputs, x, name="mobilenet_v1")


# ------------------------------------------------------------------------------------------------------- MobileNetV2
_TORCHVISION_CNA = ("0", "1", "2")  # Conv2dNormActivation children: conv, BN, ReLU6


def mobilenet_v2(input_shape: tuple[int, ...] = (1, 3, 224, 224)) -> keras.Model:
    inputs = image_input(input_shape)
    x = _conv_bn_relu(inputs, "features.0", 32, 3, 2, relu_max=6.0, names=_TORCHVISION_CNA)
    for name, c_in, c_out, stride, expand in mobilenet_v2_blocks():
        out, i = x, 0
        if expand != 1:
            out = _conv_bn_relu(out, f"{name}.conv.0", c_in * expand, 1, 1, relu_max=6.0, names=_TORCHVISION_CNA)
            i = 1
        out = _conv_bn_relu(out, f"{name}.conv.{i}", 0, 3, stride, depthwise=True, relu_max=6.0,
                            names=_TORCHVISION_CNA)
        out = layers.Conv2D(c_out, 1, use_bias=False, name=f"{name}.conv.{i + 1}")(out)
        out = batch_norm(f"{name}.conv.{i + 2}")(out)
        x = layers.Add(name=f"{name}.add")([x, out]) if stride == 1 and c_in == c_out else out
    x = _conv_bn_relu(x, "features.18", 1280, 1, 1, relu_max=6.0, names=_TORCHVISION_CNA)
    x = layers.GlobalAveragePooling2D(keepdims=True, name="avgpool")(x)
    x = layers.Dense(1000, name="classifier.1")(layers.Flatten(name="flatten")(x))
    return keras.Model(inputs, x, name="mobilenet_v2")


# ---------------------------------------------------------------------------------------------- keras.applications
def _fixed_input(input_shape: tuple[int, ...]) -> KTensor:
    n, c, h, w = input_shape
    return keras.Input(shape=(h, w, c), batch_size=n, name="data")


def resnet50_keras_app(input_shape: tuple[int, ...] = (1, 3, 224, 224)) -> keras.Model:
    """keras.applications.ResNet50 (v1 with conv biases), built untrained."""
    return keras.applications.ResNet50(weights=None, input_tensor=_fixed_input(input_shape))


def mobilenet_v2_keras_app(input_shape: tuple[int, ...] = (1, 3, 224, 224)) -> keras.Model:
    """keras.applications.MobileNetV2 (alpha 1.0), built untrained."""
    return keras.applications.MobileNetV2(weights=None, input_tensor=_fixed_input(input_shape))
