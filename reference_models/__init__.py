"""The reference suite: the same architectures in PyTorch, Keras and (where the seed has one) Caffe prototxt,
with identical layer names across frameworks.

The registry is plain data (factories are "module:function" strings) so listing models never imports a
framework.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

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

MODELS: dict[str, ReferenceModel] = {m.name: m for m in [
    ReferenceModel("lenet", "The document's LeNet (ReLU applied functionally after ip1, as the document writes it)",
                   (1, 1, 28, 28), torch=_T + "lenet", keras=_K + "lenet", prototxt="lenet.prototxt",
                   aliases={"torch": {"relu": "relu1"}, "keras": {"ip1/relu": "relu1"}}),
    ReferenceModel("lenet_relu_module", "LeNet with an nn.ReLU module (relu1) instead of F.relu",
                   (1, 1, 28, 28), torch=_T + "lenet_relu_module"),
    ReferenceModel("sepnet", "conv (no bias) + BN + ReLU, 3x3/2 max pool, depthwise + pointwise, global avg pool, FC",
                   (1, 3, 32, 32), torch=_T + "sepnet", aliases={"torch": {"flatten": "flatten"}}),
    ReferenceModel("gconv", "one grouped conv with bias, Conv2d(8, 16, 3, groups=4)", (1, 8, 10, 10),
                   torch=_T + "gconv"),
    ReferenceModel("mha", "self-attention, nn.MultiheadAttention(64, 4), 16 tokens", (1, 16, 64),
                   torch=_T + "mha"),
    ReferenceModel("block", "pre-norm transformer block: LayerNorm, MHA, residual adds, MLP 64-256-64 with GELU",
                   (1, 16, 64), torch=_T + "block", aliases={"torch": {"add": "residual1", "add_1": "residual2"}}),
]}

DEFAULT_SUITE = tuple(MODELS)


def get(name: str) -> ReferenceModel:
    from reconcile.errors import UserError

    try:
        return MODELS[name]
    except KeyError:
        raise UserError(f"unknown model {name!r}; reference models: {', '.join(MODELS)}") from None
