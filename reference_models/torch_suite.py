"""Separating models added to the PyTorch suite (the first ones live in torch_models.py).

Each exists so that two conventions which agree on the other models give different numbers here. Keras twins with
the same layer names: reference_models/keras_suite.py.
"""
from __future__ import annotations

import torch
import torch.nn as nn


class ResBlock(nn.Module):
    """A conv net with a residual add and a fixed-window average pool. Input 1x3x16x16.

    stem conv (3->8, 3x3, no bias) + BN + ReLU; a basic residual block (two 3x3 convs without bias, each + BN, the
    first + ReLU) whose output is added to its input (`out += identity`, functional, as torchvision's ResNets:
    module hooks never see it); ReLU; AvgPool2d(3, stride=2): 8x16x16 -> 8x7x7, so its input elements (2,048),
    window reads (9 x 392 = 3,528) and outputs (392) all differ; FC 392 -> 10 with bias.
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(8)
        self.relu3 = nn.ReLU()
        self.pool = nn.AvgPool2d(3, stride=2)
        self.fc = nn.Linear(8 * 7 * 7, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn3(self.conv3(self.relu2(self.bn2(self.conv2(identity)))))
        out += identity
        out = self.pool(self.relu3(out))
        return self.fc(torch.flatten(out, 1))


def resblock() -> nn.Module:
    return ResBlock()
