"""The published models and the separating suite: parameters and MACC by hand arithmetic per layer type (and the
values recorded on these machines with their tool versions), and the Keras twins equal to the PyTorch models
layer by layer. The one module of this issue that imports TensorFlow; every model is built once per module."""
from __future__ import annotations

import importlib.util
import math

import pytest

import reference_models
from conventions import terms as T
from reconcile.diff import canonical_ir
from reconcile.models import layer_ir, reference

# TensorFlow is imported where a Keras twin is built, never at collection (make test-fast imports no TF)
pytestmark = [pytest.mark.slow, pytest.mark.tensorflow,
              pytest.mark.skipif(importlib.util.find_spec("keras") is None, reason="keras is not installed")]

TWINNED = ("sepnet", "gconv", "mha", "block", "resblock", "resnet18", "resnet50_v1", "resnet50_v15", "vgg16",
           "alexnet", "mobilenet_v1", "mobilenet_v2")
CHECKED = ("name", "kind", "input_shapes", "output_shape", "kernel", "stride", "dilation", "groups", "bias", "params")


# ------------------------------------------------------------------------------------------------ hand arithmetic
class Tally:
    """Params, conv+FC MACC and BN output elements, accumulated layer by layer from the architecture tables."""

    def __init__(self):
        self.params = self.macc = self.bn = 0

    def conv(self, c_in: int, c_out: int, k: int, out: int, groups: int = 1, bias: bool = False, bn: bool = True):
        weights = k * k * (c_in // groups) * c_out
        self.params += weights + (c_out if bias else 0) + (2 * c_out if bn else 0)
        self.macc += weights * out * out
        self.bn += c_out * out * out if bn else 0

    def fc(self, n_in: int, n_out: int):
        self.params += n_in * n_out + n_out
        self.macc += n_in * n_out


def hand_resnet(depths, bottleneck: bool, stride_in_1x1: bool = False) -> Tally:
    t = Tally()
    t.conv(3, 64, 7, 112)  # stem 7x7/2; max pool 3x3/2 -> 56
    size, c_in = 56, 64
    for width, stride, depth in zip((64, 128, 256, 512), (1, 2, 2, 2), depths):
        for i in range(depth):
            s = stride if i == 0 else 1
            out = size // s
            c_out = width * 4 if bottleneck else width
            if bottleneck:
                t.conv(c_in, width, 1, out if stride_in_1x1 else size)  # v1: the 1x1 already strides
                t.conv(width, width, 3, out)
                t.conv(width, c_out, 1, out)
            else:
                t.conv(c_in, width, 3, out)
                t.conv(width, width, 3, out)
            if s != 1 or c_in != c_out:
                t.conv(c_in, c_out, 1, out)  # projection shortcut (option B)
            size, c_in = out, c_out
    t.fc(c_in, 1000)
    return t


def hand_vgg16() -> Tally:
    t = Tally()
    c_in = 3
    for size, widths in ((224, (64, 64)), (112, (128, 128)), (56, (256,) * 3), (28, (512,) * 3), (14, (512,) * 3)):
        for c_out in widths:
            t.conv(c_in, c_out, 3, size, bias=True, bn=False)
            c_in = c_out
    t.fc(512 * 7 * 7, 4096), t.fc(4096, 4096), t.fc(4096, 1000)
    return t


def hand_alexnet() -> Tally:
    t = Tally()
    for c_in, c_out, k, out in ((3, 64, 11, 55), (64, 192, 5, 27), (192, 384, 3, 13), (384, 256, 3, 13),
                                (256, 256, 3, 13)):
        t.conv(c_in, c_out, k, out, bias=True, bn=False)
    t.fc(256 * 6 * 6, 4096), t.fc(4096, 4096), t.fc(4096, 1000)
    return t


def hand_mobilenet_v1() -> Tally:
    t = Tally()
    t.conv(3, 32, 3, 112)
    c_in, size = 32, 112
    for c_out, stride in ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)) + ((512, 1),) * 5 + \
            ((1024, 2), (1024, 1)):
        size //= stride
        t.conv(c_in, c_in, 3, size, groups=c_in)  # depthwise
        t.conv(c_in, c_out, 1, size)  # pointwise
        c_in = c_out
    t.fc(1024, 1000)
    return t


def hand_mobilenet_v2() -> Tally:
    t = Tally()
    t.conv(3, 32, 3, 112)
    c_in, size = 32, 112
    for expand, c_out, repeats, stride in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                                           (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)):
        for i in range(repeats):
            hidden, out = c_in * expand, size // (stride if i == 0 else 1)
            if expand != 1:
                t.conv(c_in, hidden, 1, size)
            t.conv(hidden, hidden, 3, out, groups=hidden)
            t.conv(hidden, c_out, 1, out)
            c_in, size = c_out, out
    t.conv(320, 1280, 1, 7)
    t.fc(1280, 1000)
    return t


HAND = {"resnet18": lambda: hand_resnet((2, 2, 2, 2), bottleneck=False),
        "resnet34": lambda: hand_resnet((3, 4, 6, 3), bottleneck=False),
        "resnet50_v1": lambda: hand_resnet((3, 4, 6, 3), bottleneck=True, stride_in_1x1=True),
        "resnet50_v15": lambda: hand_resnet((3, 4, 6, 3), bottleneck=True),
        "resnet101_v1": lambda: hand_resnet((3, 4, 23, 3), bottleneck=True, stride_in_1x1=True),
        "resnet101_v15": lambda: hand_resnet((3, 4, 23, 3), bottleneck=True),
        "resnet152_v1": lambda: hand_resnet((3, 8, 36, 3), bottleneck=True, stride_in_1x1=True),
        "resnet152_v15": lambda: hand_resnet((3, 8, 36, 3), bottleneck=True),
        "vgg16": hand_vgg16, "alexnet": hand_alexnet, "mobilenet_v1": hand_mobilenet_v1,
        "mobilenet_v2": hand_mobilenet_v2}

# The must-show numbers and facts.md ("Published models", own PyTorch definitions, 224x224, batch 1).
FACTS = {"resnet18": (11_689_512, 1_814_073_344), "resnet50_v1": (25_557_032, 3_857_973_248),
         "resnet50_v15": (25_557_032, 4_089_184_256), "vgg16": (138_357_544, 15_470_264_320),
         "alexnet": (61_100_840, 714_188_480), "mobilenet_v2": (3_504_872, 300_774_272)}


def ir_macc(ir) -> int:
    return sum(T.terms(layer)[T.MACC] for layer in ir.layers if layer.kind in ("conv", "linear"))


@pytest.fixture(scope="module")
def torch_irs():
    return {name: canonical_ir(name) for name in TWINNED}


@pytest.fixture(scope="module")
def keras_irs():
    return {name: layer_ir(reference(name), "keras") for name in TWINNED + ("resnet50_keras_app",
                                                                            "mobilenet_v2_keras_app")}


@pytest.mark.slow  # traces ImageNet-sized models (seconds each, once per session)
@pytest.mark.parametrize("name", sorted(HAND))
def test_published_params_and_macc(name, torch_irs):
    hand, ir = HAND[name](), torch_irs.get(name) or canonical_ir(name)  # PyTorch-only models: traced here
    assert (ir.params, ir_macc(ir)) == (hand.params, hand.macc)
    if name in FACTS:
        assert (ir.params, ir_macc(ir)) == FACTS[name]


@pytest.mark.slow  # traces ImageNet-sized models (seconds each, once per session)
def test_mobilenet_v1_matches_the_paper_as_printed(torch_irs):
    # Howard et al. 2017, Table 8: 569 million mult-adds, 4.2 million parameters
    ir = torch_irs["mobilenet_v1"]
    assert (ir.params, ir_macc(ir)) == (4_231_976, 568_740_352)
    assert round(ir_macc(ir) / 1e6) == 569 and round(ir.params / 1e5) == 42


@pytest.mark.slow  # traces ImageNet-sized models (seconds each, once per session)
def test_resnet50_v1_and_v15_differ_only_where_the_stride_sits(torch_irs):
    v1, v15 = torch_irs["resnet50_v1"], torch_irs["resnet50_v15"]
    assert [lay.name for lay in v1.layers] == [lay.name for lay in v15.layers]
    # layer2.0: v1 strides its 1x1 (256 -> 128 at 28x28), v1.5 its 3x3 (128 -> 128 at 28x28 from 56x56)
    assert v1.layer("layer2.0.conv1").stride == (2, 2) and v1.layer("layer2.0.conv2").stride == (1, 1)
    assert v15.layer("layer2.0.conv1").stride == (1, 1) and v15.layer("layer2.0.conv2").stride == (2, 2)
    # the 3x3 produces the block's output size either way; v1.5's first 1x1 (2w -> w) runs on the S x S input
    # instead of S/2 x S/2: 2*w*w*(S*S - S*S/4) more, for (w, S) = (128, 56), (256, 28), (512, 14)
    diff = sum(2 * w * w * (s * s - (s // 2) ** 2) for w, s in ((128, 56), (256, 28), (512, 14)))
    assert ir_macc(v15) - ir_macc(v1) == diff == 3 * 77_070_336 == 231_211_008


@pytest.mark.slow  # traces ImageNet-sized models (seconds each, once per session)
def test_residual_adds_and_shared_relu_are_named(torch_irs):
    ir = torch_irs["resnet50_v1"]
    adds = [lay for lay in ir.layers if lay.kind == "add"]
    assert [lay.name for lay in adds][:2] == ["layer1.0.add", "layer1.1.add"] and len(adds) == 16
    assert all(lay.attr("functional") for lay in adds)  # `out += identity`: what module hooks miss
    relus = [lay.name for lay in ir.layers if lay.name.startswith("layer1.0.relu")]
    assert relus == ["layer1.0.relu", "layer1.0.relu#2", "layer1.0.relu#3"]  # one module, three calls
    mnv2 = torch_irs["mobilenet_v2"]
    assert [lay.name for lay in mnv2.layers if lay.kind == "add"] == [
        f"features.{i}.add" for i in (3, 5, 6, 8, 9, 10, 12, 13, 15, 16)]


@pytest.mark.slow  # traces ImageNet-sized models (seconds each, once per session)
def test_resblock_separates_the_pool_readings(torch_irs):
    ir = torch_irs["resblock"]
    pool = T.terms(ir.layer("pool"))
    # AvgPool2d(3, 2) on 8x16x16: input 8*16*16, output 8*7*7, window reads 9 per output
    assert (pool[T.IN], pool[T.OUT], pool[T.WINDOW]) == (8 * 16 * 16, 8 * 7 * 7, 9 * 8 * 7 * 7) == (2048, 392, 3528)
    assert ir.layer("residual").kind == "add" and ir.layer("residual").out_elements == 8 * 16 * 16
    # conv1 3->8, conv2/3 8->8 (3x3 at 16x16, no bias), fc 392->10
    assert ir_macc(ir) == 9 * 3 * 8 * 256 + 2 * 9 * 8 * 8 * 256 + 392 * 10 == 354_128
    assert ir.params == 9 * 3 * 8 + 2 * 9 * 8 * 8 + 3 * 2 * 8 + 392 * 10 + 10 == 5_346


# ------------------------------------------------------------------------------------------------ Keras twins
def _by_name(ir):
    return {lay.name: lay for lay in ir.layers}


@pytest.mark.slow
@pytest.mark.parametrize("name", TWINNED)
def test_keras_twin_equals_torch_layer_by_layer(name, torch_irs, keras_irs):
    torch_ir, keras_ir = torch_irs[name], keras_irs[name]
    assert keras_ir.framework == "keras" and keras_ir.params == torch_ir.params
    t_layers, k_layers = _by_name(torch_ir), _by_name(keras_ir)
    extra = set(k_layers) - set(t_layers)
    # AlexNet's 11x11/4 conv pads 2: Keras needs an explicit ZeroPadding2D ('same' would give 56, not 55)
    assert extra == ({"features.0.pad"} if name == "alexnet" else set())
    assert set(t_layers) <= set(k_layers)
    for layer_name, t in t_layers.items():
        k = k_layers[layer_name]
        for f in CHECKED:
            if name == "alexnet" and layer_name == "features.0" and f == "input_shapes":
                assert k.input_shapes == ((1, 3, 228, 228),)  # the padded input
                continue
            assert getattr(k, f) == getattr(t, f), f"{name}.{layer_name}.{f}: {getattr(k, f)} != {getattr(t, f)}"


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in TWINNED if not n.startswith("resnet")])
def test_keras_twin_layer_order(name, torch_irs, keras_irs):
    # Keras lists a graph's layers by depth, so ResNet's projection shortcut comes before the main path's last
    # conv there; every other twin keeps torch's execution order
    keep = set(_by_name(torch_irs[name]))
    assert [lay.name for lay in keras_irs[name].layers if lay.name in keep] == \
           [lay.name for lay in torch_irs[name].layers]


@pytest.mark.slow
def test_keras_applications_models_differ_as_documented(torch_irs, keras_irs):
    resnet, v1 = keras_irs["resnet50_keras_app"], torch_irs["resnet50_v1"]
    convs = [lay for lay in resnet.layers if lay.kind == "conv"]
    assert len(convs) == 53 and all(lay.bias for lay in convs)
    # every conv has a bias: + sum of conv output channels (64 stem, then per stage blocks x (w + w + 4w) + 4w)
    biases = 64 + sum(n * 6 * w + 4 * w for n, w in ((3, 64), (4, 128), (6, 256), (3, 512)))
    assert biases == 26_560 and resnet.params == v1.params + biases == 25_583_592
    assert ir_macc(resnet) == ir_macc(v1) == 3_857_973_248  # stride in the 1x1, as the paper: v1
    mnv2 = keras_irs["mobilenet_v2_keras_app"]
    assert (mnv2.params, ir_macc(mnv2)) == (3_504_872, 300_774_272)


@pytest.mark.slow
def test_tf_profiler_on_keras_resnet50_matches_facts():
    from reconcile.adapters import tf_profiler
    from reconcile.records import TOTAL, Emitter

    if tf_profiler.version() != "2.21.0":
        pytest.skip("facts.md recorded TF 2.21.0")
    spec = reference("resnet50_keras_app")
    records = tf_profiler.count(spec, Emitter(spec.name, "keras", "tf_profiler", tf_profiler.version()))
    total = next(r.value for r in records if r.layer == TOTAL and r.metric == "float_ops")
    assert total == 7_755_299_312  # facts.md: Keras applications.ResNet50 under the TF profiler


# ------------------------------------------------------------------------------------------------ tools vs facts
@pytest.mark.slow
def test_thop_and_fvcore_on_published_models(torch_irs):
    from reconcile import adapters, api

    versions = {"thop": "0.1.1.post2209072238", "fvcore": "0.1.5.post20221221"}
    if any(adapters.get(t).version() != v for t, v in versions.items()):
        pytest.skip("facts.md recorded thop 0.1.1.post2209072238 and fvcore 0.1.5.post20221221")
    df = api.run(models="resnet50_v1,mobilenet_v2", tools="thop,fvcore")
    got = {(r.model, r.tool): r.value for r in df[df.layer == "__total__"].itertuples()
           if r.quantity == "compute"}
    r50, mnv2 = HAND["resnet50_v1"](), HAND["mobilenet_v2"]()
    # thop 0.1.1: MACC + 4 x BN elements + adaptive avg pool (7*7 + 1) x outputs; fvcore: MACC + 2 x BN elements
    # + the adaptive pool's input elements
    assert got["resnet50_v1", "thop"] == r50.macc + 4 * r50.bn + 50 * 2048 == 3_900_424_192  # facts.md
    assert got["resnet50_v1", "fvcore"] == r50.macc + 2 * r50.bn + 49 * 2048 == 3_879_247_872  # facts.md
    # facts.md's 327,486,720 for thop had torchvision's functional pool (invisible to hooks); ours is a module
    assert got["mobilenet_v2", "thop"] == mnv2.macc + 4 * mnv2.bn + 50 * 1280 == 327_486_720 + 64_000
    assert got["mobilenet_v2", "fvcore"] == mnv2.macc + 2 * mnv2.bn + 49 * 1280 == 314_193_216  # facts.md


def test_registry_default_suite_and_published_list():
    small = ("lenet", "lenet_relu_module", "sepnet", "gconv", "mha", "block", "resblock")
    assert reference_models.DEFAULT_SUITE[:len(small)] == small
    assert {"resnet50_v1", "mobilenet_v2"} <= set(reference_models.DEFAULT_SUITE)
    assert "vgg16" not in reference_models.DEFAULT_SUITE  # its TF-profiler job alone takes ~60 s
    assert set(reference_models.PUBLISHED) == set(HAND) | {"resnet50_keras_app", "mobilenet_v2_keras_app"}
    for name in TWINNED:
        assert reference_models.MODELS[name].keras, name
    assert math.prod(reference_models.MODELS["vgg16"].input_shape) == 3 * 224 * 224
