"""The reference suite: the same architectures in PyTorch, Keras and (where the seed has one) Caffe prototxt,
with identical layer names across frameworks.

The registry is plain data (factories are "module:function" strings) so listing models never imports a
framework.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from . import naming

PROTOTXT_DIR = Path(__file__).parent / "prototxt"


@dataclass(frozen=True)
class ReferenceModel:
    name: str
    description: str
    input_shape: tuple[int, ...]  # channels-first, with batch
    torch: Optional[str] = None  # "module:factory" returning an nn.Module
    keras: Optional[str] = None  # "module:factory(input_shape)" returning a keras.Model
    prototxt: Optional[str] = None  # file name under reference_models/prototxt
    # Canonical names for nodes a front end names itself (fx names F.relu "relu"; the prototxt calls it relu1).
    aliases: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def frameworks(self) -> tuple[str, ...]:
        return tuple(f for f, v in (("torch", self.torch), ("keras", self.keras), ("caffe", self.prototxt)) if v)

    @property
    def prototxt_path(self) -> Optional[Path]:
        return PROTOTXT_DIR / self.prototxt if self.prototxt else None


_T = "reference_models.torch_models:"
_K = "reference_models.keras_models:"
_TS = "reference_models.torch_suite:"
_KS = "reference_models.keras_suite:"
_P = "reference_models.published_models:"
_KP = "reference_models.keras_published:"
IMAGENET = (1, 3, 224, 224)


def _resnet_aliases(depths: tuple[int, ...], relu_calls: int) -> dict[str, dict[str, str]]:
    blocks = naming.resnet_blocks(depths)
    return {"torch": naming.fx_add_aliases(blocks), "keras": naming.keras_relu_aliases(blocks, relu_calls)}


_SMALL = [
    ReferenceModel("lenet", "The document's LeNet (ReLU applied functionally after ip1, as the document writes it)",
                   (1, 1, 28, 28), torch=_T + "lenet", keras=_K + "lenet", prototxt="lenet.prototxt",
                   aliases={"torch": {"relu": "relu1"}, "keras": {"ip1/relu": "relu1"}}),
    ReferenceModel("lenet_relu_module", "LeNet with an nn.ReLU module (relu1) instead of F.relu",
                   (1, 1, 28, 28), torch=_T + "lenet_relu_module"),
    ReferenceModel("sepnet", "conv (no bias) + BN + ReLU, 3x3/2 max pool, depthwise + pointwise, global avg pool, FC",
                   (1, 3, 32, 32), torch=_T + "sepnet", keras=_KS + "sepnet",
                   aliases={"torch": {"flatten": "flatten"}}),
    ReferenceModel("gconv", "one grouped conv with bias, Conv2d(8, 16, 3, groups=4)", (1, 8, 10, 10),
                   torch=_T + "gconv", keras=_KS + "gconv"),
    ReferenceModel("mha", "self-attention, nn.MultiheadAttention(64, 4), 16 tokens, called with need_weights=False "
                          "(torch's fused scaled_dot_product_attention path; the attention figures recorded earlier were "
                          "measured with need_weights=True, which runs torch.bmm instead). Keras twin: "
                          "MultiHeadAttention(4, 16) has the same 16,640 parameters in another layout (per-head "
                          "kernels, not torch's packed in_proj_weight) and computes the attention matmuls with "
                          "einsum", (1, 16, 64),
                   torch=_T + "mha", keras=_KS + "mha"),
    ReferenceModel("block", "pre-norm transformer block: LayerNorm, MHA, residual adds, MLP 64-256-64 with GELU. Keras "
                          "twin: same layers and parameter counts; its MultiHeadAttention differs in weight layout as "
                          "in `mha`", (1, 16, 64),
                   torch=_T + "block", keras=_KS + "block",
                   aliases={"torch": {"add": "residual1", "add_1": "residual2"}}),
    ReferenceModel("resblock", "conv (no bias) + BN + ReLU, a basic residual block whose add is functional (`+=`), "
                             "ReLU, a fixed-window 3x3/2 average pool (input 2,048 != window reads 3,528 != output 392)"
                             ", FC 392 -> 10", (1, 3, 16, 16),
                   torch=_TS + "resblock", keras=_KS + "resblock", aliases={"torch": {"add": "residual"}}),
]

# Published ImageNet models, written in this repository (reference_models/published_models.py; Keras twins in
# keras_published.py). Paper numbers for them: reference_models/published.csv.
_PUBLISHED = [
    ReferenceModel("resnet18", "ResNet-18 (torchvision layout): 11,689,512 params, conv+FC MACC 1,814,073,344",
                   IMAGENET, torch=_P + "resnet18", keras=_KP + "resnet18",
                   aliases=_resnet_aliases(naming.RESNET18_DEPTHS, 2)),
    ReferenceModel("resnet50_v1", "ResNet-50 v1 as in He et al. 2015 (stride 2 in the first 1x1 conv of a "
                                "down-sampling block): 25,557,032 params, conv+FC MACC 3,857,973,248",
                   IMAGENET, torch=_P + "resnet50_v1", keras=_KP + "resnet50_v1",
                   aliases=_resnet_aliases(naming.RESNET50_DEPTHS, 3)),
    ReferenceModel("resnet50_v15", "ResNet-50 v1.5 as torchvision's resnet50 (stride 2 in the 3x3 conv): 25,557,032 "
                                 "params, conv+FC MACC 4,089,184,256",
                   IMAGENET, torch=_P + "resnet50_v15", keras=_KP + "resnet50_v15",
                   aliases=_resnet_aliases(naming.RESNET50_DEPTHS, 3)),
    ReferenceModel("vgg16", "VGG-16 (torchvision, no BN): 138,357,544 params, conv+FC MACC 15,470,264,320",
                   IMAGENET, torch=_P + "vgg16", keras=_KP + "vgg16"),
    ReferenceModel("alexnet", "AlexNet, torchvision's single-tower variant (64-192-384-256-256): 61,100,840 params, "
                            "conv+FC MACC 714,188,480. Keras twin: an extra ZeroPadding2D layer (features.0.pad, kind "
                            "unknown in its IR) because 'same' cannot pad 11x11/4 to 55",
                   IMAGENET, torch=_P + "alexnet", keras=_KP + "alexnet"),
    ReferenceModel("mobilenet_v1", "MobileNetV1 1.0-224 (Howard et al. 2017, Table 1; ReLU, no conv bias, 7x7 avg "
                                 "pool): 4,231,976 params, conv+FC MACC 568,740,352",
                   IMAGENET, torch=_P + "mobilenet_v1", keras=_KP + "mobilenet_v1"),
    ReferenceModel("mobilenet_v2", "MobileNetV2 1.0-224 (torchvision layout, but the final pool is an "
                                 "nn.AdaptiveAvgPool2d module `avgpool` instead of a functional call): 3,504,872 params"
                                 ", conv+FC MACC 300,774,272",
                   IMAGENET, torch=_P + "mobilenet_v2", keras=_KP + "mobilenet_v2",
                   aliases={"torch": naming.fx_add_aliases(naming.mobilenet_v2_residual_blocks())}),
    ReferenceModel("resnet34", "ResNet-34 (He et al. 2015 Table 1; basic blocks, so v1 and v1.5 are the same network), "
                             "PyTorch only", IMAGENET, torch=_P + "resnet34"),
    ReferenceModel("resnet101_v1", "ResNet-101 v1 (He et al. 2015 Table 1, stride in the first 1x1), PyTorch only",
                   IMAGENET, torch=_P + "resnet101_v1"),
    ReferenceModel("resnet152_v1", "ResNet-152 v1 (He et al. 2015 Table 1, stride in the first 1x1), PyTorch only",
                   IMAGENET, torch=_P + "resnet152_v1"),
    ReferenceModel("resnet101_v15", "ResNet-101 v1.5 as torchvision's resnet101 (stride in the 3x3), PyTorch only",
                   IMAGENET, torch=_P + "resnet101_v15"),
    ReferenceModel("resnet152_v15", "ResNet-152 v1.5 as torchvision's resnet152 (stride in the 3x3), PyTorch only",
                   IMAGENET, torch=_P + "resnet152_v15"),
    ReferenceModel("resnet50_keras_app", "keras.applications.ResNet50 (weights=None), Keras only: ResNet-50 v1 like "
                                       "resnet50_v1 but every conv has a bias (+26,560 params: 25,583,592 trainable), "
                                       "BN epsilon 1.001e-5, explicit ZeroPadding2D layers, Keras layer names, fused "
                                       "softmax", IMAGENET, keras=_KP + "resnet50_keras_app"),
    ReferenceModel("mobilenet_v2_keras_app", "keras.applications.MobileNetV2 (alpha 1.0, weights=None), Keras only: "
                                           "the layers and 3,504,872 trainable params of mobilenet_v2, but "
                                           "ZeroPadding2D + 'valid' before stride-2 depthwise convs, Keras layer "
                                           "names, fused softmax", IMAGENET, keras=_KP + "mobilenet_v2_keras_app"),
]

MODELS: dict[str, ReferenceModel] = {m.name: m for m in _SMALL + _PUBLISHED}

# What `make reconcile` (and `reconcile run` without --models) runs: every small model, plus three published ones
# that stand for the rest: resnet50_v1 and resnet50_v15 (the paper's 3.8e9 "FLOPs" against torchvision's 4.09
# "GFLOPS": one stride moved, 231M MACC apart; BN, residual adds, a reused ReLU module) and mobilenet_v2
# (depthwise convs, ReLU6, inverted residuals). Measured on 2 cores (issue 7): the whole default suite, 14 tools
# each, report included, in ~1 min 45 s (the small models alone: ~75 s); published-model jobs take 1-6 s each,
# their TF-profiler jobs 5-13 s. Left out, each one `--models` away: vgg16 (its TF-profiler job alone takes ~60 s,
# half the 120 s job timeout, and its torch jobs ~50 s), alexnet, resnet18, mobilenet_v1 and the Keras-only
# keras.applications models (all of these together: ~2 min 40 s more). The report's "published numbers" section
# still ranks their paper numbers against the analytic conventions (and tool totals cached by `reconcile which`).
DEFAULT_SUITE = tuple(m.name for m in _SMALL) + ("resnet50_v1", "resnet50_v15", "mobilenet_v2")
PUBLISHED = tuple(m.name for m in _PUBLISHED)


def get(name: str) -> ReferenceModel:
    from reconcile.errors import UserError
    from reconcile.names import did_you_mean

    try:
        return MODELS[name]
    except KeyError:
        raise UserError(f"unknown model {name!r}{did_you_mean(name, MODELS)}; reference models: "
                        f"{', '.join(MODELS)}") from None


PUBLISHED_CSV = Path(__file__).parent / "published.csv"


def published_numbers() -> list[dict[str, str]]:
    """The numbers papers print for these models, with citations (published.csv; columns: model, quantity,
    printed, value, unit, counts, citation, verified, checked_against, note)."""
    import csv

    with open(PUBLISHED_CSV, newline="", encoding="utf-8") as handle:
        return [row for row in csv.DictReader(handle) if row.get("model")]
