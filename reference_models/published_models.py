"""Published ImageNet architectures written out in PyTorch (torchvision cannot be installed beside the pinned torch).

Module names are torchvision's qualified names (`layer1.0.conv1`, `features.0`, `classifier.6`), so per-layer rows
of module-walking tools line up with the IR and with the Keras twins (reference_models/keras_published.py).
Parameter counts equal torchvision's: resnet18 11,689,512; resnet50 25,557,032; vgg16 138,357,544; alexnet
61,100,840; mobilenet_v2 3,504,872. Input 1x3x224x224 everywhere.

Where these differ from torchvision, on purpose:
- resnet50_v1 puts the down-sampling stride in the first 1x1 conv of a block, as the paper's (Caffe) model does;
  torchvision (`resnet50`, here resnet50_v15) puts it in the 3x3 conv ("ResNet v1.5"). Same parameters, fewer
  MACC for v1 (the 3x3 runs on the already down-sampled map).
- mobilenet_v2 pools with an `nn.AdaptiveAvgPool2d` module named `avgpool` where torchvision calls
  `nn.functional.adaptive_avg_pool2d`: the same arithmetic, but a module has a kind in the IR and hook-based
  tools see it, so their pool convention is measured instead of hidden.
- mobilenet_v1 has no torchvision model; it follows Howard et al. 2017 Table 1 (ReLU, BN after every conv, no
  conv bias, 7x7 average pool, one FC).
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn

from .naming import (MOBILENET_V1_BLOCKS, RESNET18_DEPTHS, RESNET34_DEPTHS, RESNET50_DEPTHS, RESNET101_DEPTHS,
                     RESNET152_DEPTHS, RESNET_STAGES, VGG16_CFG, mobilenet_v2_blocks)


# ------------------------------------------------------------------------------------------------------------ ResNet
class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in: int, width: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)  # one module called twice, as torchvision: the IR lists relu, relu#2
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        # torchvision's order: the projection runs after the main path (the IR lists layers in this order)
        identity = x if self.downsample is None else self.downsample(x)
        out += identity  # functional: module hooks never see it
        return self.relu(out)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int = 1, downsample: nn.Module | None = None,
                 stride_in_1x1: bool = False):
        super().__init__()
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = nn.Conv2d(c_in, width, 1, s1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, s3, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    def __init__(self, block: type, depths: tuple[int, ...], num_classes: int = 1000, stride_in_1x1: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        c_in = 64
        for (stage, width, stride), depth in zip(RESNET_STAGES, depths):
            blocks = []
            for i in range(depth):
                s = stride if i == 0 else 1
                downsample = None
                if s != 1 or c_in != width * block.expansion:  # option B: projection only where shapes change
                    downsample = nn.Sequential(nn.Conv2d(c_in, width * block.expansion, 1, s, bias=False),
                                               nn.BatchNorm2d(width * block.expansion))
                extra = {"stride_in_1x1": stride_in_1x1} if block is Bottleneck else {}
                blocks.append(block(c_in, width, s, downsample, **extra))
                c_in = width * block.expansion
            setattr(self, stage, nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18() -> nn.Module:
    return ResNet(BasicBlock, RESNET18_DEPTHS)


def resnet34() -> nn.Module:
    """He et al. 2015 Table 1, 34-layer (basic blocks: v1 and v1.5 are the same network)."""
    return ResNet(BasicBlock, RESNET34_DEPTHS)


def resnet101_v1() -> nn.Module:
    """He et al. 2015 Table 1, 101-layer, stride 2 in the first 1x1 conv as the paper's model."""
    return ResNet(Bottleneck, RESNET101_DEPTHS, stride_in_1x1=True)


def resnet152_v1() -> nn.Module:
    """He et al. 2015 Table 1, 152-layer, stride 2 in the first 1x1 conv as the paper's model."""
    return ResNet(Bottleneck, RESNET152_DEPTHS, stride_in_1x1=True)


def resnet101_v15() -> nn.Module:
    """torchvision's resnet101 (stride 2 in the 3x3 conv)."""
    return ResNet(Bottleneck, RESNET101_DEPTHS, stride_in_1x1=False)


def resnet152_v15() -> nn.Module:
    """torchvision's resnet152 (stride 2 in the 3x3 conv)."""
    return ResNet(Bottleneck, RESNET152_DEPTHS, stride_in_1x1=False)


def resnet50_v1() -> nn.Module:
    """ResNet-50 as in He et al. 2015 (stride 2 in the first 1x1 conv of conv3_1, conv4_1, conv5_1)."""
    return ResNet(Bottleneck, RESNET50_DEPTHS, stride_in_1x1=True)


def resnet50_v15() -> nn.Module:
    """torchvision's resnet50 (stride 2 in the 3x3 conv)."""
    return ResNet(Bottleneck, RESNET50_DEPTHS, stride_in_1x1=False)


# ------------------------------------------------------------------------------------------------------------ VGG-16
class VGG(nn.Module):
    """torchvision vgg16 (no BN): features.0 ... features.30, avgpool (7x7 adaptive: identity at 224), classifier."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for v in VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, v, 3, padding=1), nn.ReLU(inplace=True)]
                c_in = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(4096, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def vgg16() -> nn.Module:
    return VGG()


# ----------------------------------------------------------------------------------------------------------- AlexNet
class AlexNet(nn.Module):
    """torchvision alexnet: the single-tower variant of "One weird trick" (Krizhevsky 2014, arXiv 1404.5997),
    64-192-384-256-256 channels, not the two-tower 96-256-384-384-256 network of the 2012 paper."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(nn.Dropout(), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
                                        nn.Dropout(), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
                                        nn.Linear(4096, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def alexnet() -> nn.Module:
    return AlexNet()


# ------------------------------------------------------------------------------------------------------- MobileNetV1
def _conv_bn_relu(c_in: int, c_out: int, kernel: int, stride: int, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(OrderedDict([
        ("conv", nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False)),
        ("bn", nn.BatchNorm2d(c_out)), ("relu", nn.ReLU(inplace=True))]))


class MobileNetV1(nn.Module):
    """Howard et al. 2017, Table 1: conv 3x3/2 32, 13 depthwise-separable blocks, avg pool 7x7, FC 1000.
    Names: conv1.{conv,bn,relu}, blocks.<i>.dw.{conv,bn,relu}, blocks.<i>.pw.{conv,bn,relu}, avgpool, fc.
    `width` is §4.2's width multiplier alpha (every layer's channels times alpha, Table 6); the final pool averages
    the whole last feature map (7x7 at 224, smaller at the lower resolutions of Table 7)."""

    def __init__(self, num_classes: int = 1000, width: float = 1.0):
        super().__init__()
        scaled = lambda c: int(c * width)  # noqa: E731
        self.conv1 = _conv_bn_relu(3, scaled(32), 3, 2)
        blocks, c_in = [], scaled(32)
        for c_out, stride in MOBILENET_V1_BLOCKS:
            c_out = scaled(c_out)
            blocks.append(nn.Sequential(OrderedDict([("dw", _conv_bn_relu(c_in, c_in, 3, stride, groups=c_in)),
                                                     ("pw", _conv_bn_relu(c_in, c_out, 1, 1))])))
            c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.avgpool = nn.AvgPool2d(7) if width == 1.0 else nn.AdaptiveAvgPool2d(1)  # the paper's 7x7 window at 224
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(self.blocks(self.conv1(x))), 1))


def mobilenet_v1(width: float = 1.0, resolution: int = 224) -> nn.Module:
    """MobileNetV1 at width multiplier `width` (Howard et al. 2017 §4.2, Table 6); `resolution` is taken by the
    input shape, not the network (Table 7): an average pool over the whole last map keeps every resolution."""
    if resolution != 224:
        model = MobileNetV1(width=width)
        model.avgpool = nn.AdaptiveAvgPool2d(1)
        return model
    return MobileNetV1(width=width)


# ------------------------------------------------------------------------------------------------------- MobileNetV2
def _conv_bn_relu6(c_in: int, c_out: int, kernel: int, stride: int, groups: int = 1) -> nn.Sequential:
    """torchvision Conv2dNormActivation: children 0 (conv), 1 (BN), 2 (ReLU6)."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, expand: int):
        super().__init__()
        hidden = c_in * expand
        self.use_res_connect = stride == 1 and c_in == c_out
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(_conv_bn_relu6(c_in, hidden, 1, 1))
        layers += [_conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]  # linear bottleneck: no ReLU
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


def _divisible(value: float, divisor: int = 8) -> int:
    """Channels rounded to a multiple of 8, never below 90% of the value: the released MobileNetV2's rule
    (tensorflow/models research/slim/nets/mobilenet/mobilenet.py _make_divisible; torchvision's the same)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class MobileNetV2(nn.Module):
    """`width` is Sandler et al. 2018's width multiplier (Table 4's 'MobileNetV2 (1.4)'): every layer's channels
    times it, rounded as the released model does; the last 1x1 conv keeps 1280 channels below 1.0."""

    def __init__(self, num_classes: int = 1000, width: float = 1.0):
        super().__init__()
        c = (lambda ch: _divisible(ch * width)) if width != 1.0 else (lambda ch: ch)
        last = c(1280) if width > 1.0 else 1280
        features: list[nn.Module] = [_conv_bn_relu6(3, c(32), 3, 2)]
        features += [InvertedResidual(c(c_in), c(c_out), stride, t)
                     for _, c_in, c_out, stride, t in mobilenet_v2_blocks()]
        features.append(_conv_bn_relu6(c(320), last, 1, 1))
        self.features = nn.Sequential(*features)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def mobilenet_v2(width: float = 1.0) -> nn.Module:
    return MobileNetV2(width=width)
