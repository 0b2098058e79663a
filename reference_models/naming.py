"""Layer names of the published architectures, as plain data (no framework import).

The PyTorch definitions, their Keras twins and the registry's aliases all derive names from here, so the three
cannot drift apart. Names follow torchvision's qualified module names (`layer1.0.conv1`, `features.3.conv.1.0`).
Residual additions have no module in torchvision (`out += identity`, `x + self.conv(x)`): torch.fx names them
`add`, `add_1`, ... in execution order, and the registry aliases those to `<block>.add`, the name the Keras twins
give their `Add` layer.
"""
from __future__ import annotations

# ResNet stages: (stage name, width of the 3x3 convs, stride of the first block)
RESNET_STAGES = (("layer1", 64, 1), ("layer2", 128, 2), ("layer3", 256, 2), ("layer4", 512, 2))
RESNET18_DEPTHS = (2, 2, 2, 2)
RESNET34_DEPTHS = (3, 4, 6, 3)
RESNET50_DEPTHS = (3, 4, 6, 3)
RESNET101_DEPTHS = (3, 4, 23, 3)
RESNET152_DEPTHS = (3, 8, 36, 3)

# VGG-16 (configuration "D"): conv widths, "M" = 2x2/2 max pool
VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")

# MobileNetV2 inverted-residual settings (Sandler et al. 2018, Table 2): expansion t, channels c, repeats n, stride s
MOBILENET_V2_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                         (6, 160, 3, 2), (6, 320, 1, 1))

# MobileNetV1 body (Howard et al. 2017, Table 1): (pointwise output channels, depthwise stride) per separable block.
# The paper's table prints "Conv dw / s2" for the 13th block, but its output stays 7x7: stride 1, as every
# released implementation has it.
MOBILENET_V1_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1),
                       (512, 1), (512, 1), (1024, 2), (1024, 1))


def resnet_blocks(depths: tuple[int, ...]) -> list[str]:
    """Qualified names of every residual block, in execution order: layer1.0, layer1.1, ..."""
    return [f"{stage}.{i}" for (stage, _, _), depth in zip(RESNET_STAGES, depths) for i in range(depth)]


def fx_add_aliases(blocks: list[str]) -> dict[str, str]:
    """torch.fx's names of the functional residual adds (add, add_1, ...) -> `<block>.add`."""
    return {("add" if i == 0 else f"add_{i}"): f"{block}.add" for i, block in enumerate(blocks)}


def mobilenet_v2_blocks() -> list[tuple[str, int, int, int, int]]:
    """(name, in channels, out channels, stride, expansion) of each inverted-residual block: features.1 ..."""
    blocks, channels, index = [], 32, 1
    for t, c, n, s in MOBILENET_V2_SETTINGS:
        for i in range(n):
            blocks.append((f"features.{index}", channels, c, s if i == 0 else 1, t))
            channels, index = c, index + 1
    return blocks


def mobilenet_v2_residual_blocks() -> list[str]:
    """Blocks with a residual add: stride 1 and as many outputs as inputs (torchvision InvertedResidual)."""
    return [name for name, c_in, c_out, stride, _ in mobilenet_v2_blocks() if stride == 1 and c_in == c_out]


def keras_relu_aliases(blocks: list[str], calls: int) -> dict[str, str]:
    """The Keras twins' per-call ReLU layers (`<block>.relu_2`, ...) -> torch_ir's names of a module's later calls
    (`<block>.relu#2`, ...); see reference_models/keras_published.py for why the twins do not share one layer."""
    return {f"{block}.relu_{k}": f"{block}.relu#{k}" for block in blocks for k in range(2, calls + 1)}
