"""Reference models in PyTorch. Module names are the canonical layer names shared with the Keras twins and the
Caffe prototxt (conv1, pool1, ..., ip1, relu1, ip2)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class LeNet(nn.Module):
    """The document's LeNet: 1x28x28 -> conv1 20x24x24 -> pool1 -> conv2 50x8x8 -> pool2 -> ip1 500 -> ip2 10.

    `functional_relu=True` is the document's own code (`F.relu(self.fc1(out))`), invisible to module hooks;
    False uses an `nn.ReLU` module named relu1 instead."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, functional_relu: bool = True):
        super().__init__()
        self.functional_relu = functional_relu
        self.conv1 = nn.Conv2d(in_channels, 20, kernel_size=5, stride=1)
        self.pool1 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.conv2 = nn.Conv2d(20, 50, kernel_size=5, stride=1)
        self.pool2 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.ip1 = nn.Linear(50 * 4 * 4, 500)
        if not functional_relu:
            self.relu1 = nn.ReLU()
        self.ip2 = nn.Linear(500, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pool1(self.conv1(x))
        out = self.pool2(self.conv2(out))
        out = out.reshape(out.size(0), -1)
        out = F.relu(self.ip1(out)) if self.functional_relu else self.relu1(self.ip1(out))
        return self.ip2(out)


def lenet() -> nn.Module:
    return LeNet(functional_relu=True)


def lenet_relu_module() -> nn.Module:
    return LeNet(functional_relu=False)


class SepNet(nn.Module):
    """Conv without bias + BN + ReLU, a 3x3/2 max pool (input elements != window reads), depthwise + pointwise
    (the document's DW+PW case), global average pool, FC. Input 1x3x32x32."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(3, stride=2, padding=1)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.pw = nn.Conv2d(16, 32, 1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.relu1(self.bn1(self.conv1(x))))
        x = self.gap(self.pw(self.dw(x)))
        return self.fc(torch.flatten(x, 1))


def sepnet() -> nn.Module:
    return SepNet()


class GConv(nn.Module):
    """One grouped conv with bias: Conv2d(8, 16, 3, groups=4). Input 1x8x10x10."""

    def __init__(self):
        super().__init__()
        self.gconv = nn.Conv2d(8, 16, 3, groups=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gconv(x)


def gconv() -> nn.Module:
    return GConv()


class MHA(nn.Module):
    """Self-attention with nn.MultiheadAttention(64, 4). Input 1x16x64 (batch, tokens, features)."""

    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(64, 4, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x, need_weights=False)[0]


def mha() -> nn.Module:
    return MHA()


class Block(nn.Module):
    """Pre-norm transformer block: x + MHA(LN(x)); x + fc2(GELU(fc1(LN(x)))). Input 1x16x64."""

    def __init__(self, dim: int = 64, heads: int = 4, hidden: int = 256):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ln2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.fc2(self.act(self.fc1(self.ln2(x))))


def block() -> nn.Module:
    return Block()
