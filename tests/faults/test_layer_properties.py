"""Property tests over random layers. Conv / linear / pool: the document's formulas equal the hand arithmetic
written here, and the in-process counters' numbers decompose into the basis terms with residual 0 through their
catalogued conventions (reconcile.diff.decompose_catalogued). Conv / linear / pool / attention: every installed
torch counter, each run as a job runs (a forked child), decomposes with residual 0 too."""
from collections import OrderedDict

import pytest
import torch.nn as nn
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conventions import catalogue
from conventions import terms as T
from conventions.formulas import model_counts
from reconcile import adapters, api, models
from reconcile.diff import decompose_catalogued
from reconcile.records import OK, Emitter

TOOLS = ("thop", "fvcore", "torch_flop_counter")  # in-process: none of them patches torch for good
PROPERTY = settings(max_examples=12, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


def out_size(size: int, kernel: int, stride: int, pad: int, dilation: int = 1) -> int:
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


@st.composite
def conv_case(draw):
    groups = draw(st.sampled_from([1, 1, 2]))
    c_in, c_out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    k, s, d = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
    p = draw(st.integers(0, 2))
    n, h, w = draw(st.integers(1, 2)), draw(st.integers(d * (k - 1) + 1, 10)), draw(st.integers(d * (k - 1) + 1, 10))
    bias = draw(st.booleans())
    oh, ow = out_size(h, k, s, p, d), out_size(w, k, s, p, d)
    weights = k * k * (c_in // groups) * c_out
    macc = weights * oh * ow * n  # k_h*k_w*c_in/G*c_out per output position, per sample
    expected = {"params": weights + (c_out if bias else 0), "macc": macc,
                "flops": 2 * macc + (c_out * oh * ow * n if bias else 0)}
    return nn.Conv2d(c_in, c_out, k, s, p, d, groups, bias), (n, c_in, h, w), expected


@st.composite
def linear_case(draw):
    n_in, n_out = draw(st.integers(1, 16)), draw(st.integers(1, 8))
    n, bias = draw(st.integers(1, 3)), draw(st.booleans())
    expected = {"params": n_in * n_out + (n_out if bias else 0), "macc": n_in * n_out * n,
                "flops": (2 * n_in * n_out + (n_out if bias else 0)) * n}
    return nn.Linear(n_in, n_out, bias), (n, n_in), expected


@st.composite
def pool_case(draw):
    k = draw(st.integers(1, 3))
    s, p = draw(st.integers(1, 3)), draw(st.integers(0, k // 2))
    n, c, h, w = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(k, 9)), draw(st.integers(k, 9))
    layer = draw(st.sampled_from([nn.MaxPool2d, nn.AvgPool2d]))(k, s, p)
    # the document counts a pool as its input elements (FLOPs_pool1 = 20*24*24)
    return layer, (n, c, h, w), {"params": 0, "macc": None, "flops": n * c * h * w}


def trace(layer, shape):
    module = nn.Sequential(OrderedDict([("layer", layer)]))
    spec = api.register_module(module, shape, "prop")
    return spec, models.layer_ir(spec, "torch")


def check_formulas(layer, shape, expected):
    spec, ir = trace(layer, shape)
    (only, counts), (_, total) = model_counts(ir)
    assert only.name == "layer"
    assert {"params": counts.params, "macc": counts.macc, "flops": counts.flops} == expected
    assert total.flops == expected["flops"]
    return spec, ir


def check_tools(spec, ir):
    layer = ir.layer("layer")
    batch = layer.batch
    for tool in TOOLS:
        module = adapters.get(tool)
        if module.unavailable():
            continue
        emit = Emitter(spec.name, "torch", tool, module.version())
        rows = [r for r in module.count(spec, emit) if r.layer == "layer" and r.status == OK]
        assert rows or layer.kind.startswith("pool"), f"{tool} printed nothing for {layer}"
        for rec in rows:
            entries = catalogue.lookup_all(tool, rec.tool_version, rec.metric, layer)
            dec = decompose_catalogued(float(rec.value), T.terms(layer), batch, rec.quantity, entries)
            assert dec.residual == 0, (tool, rec.metric, rec.value, layer, dec.text)


@pytest.mark.slow  # 12 convs through the torch front end and thop: seconds (make test runs it)
@PROPERTY
@given(conv_case())
def test_conv(case):
    layer, shape, expected = case
    check_tools(*check_formulas(layer, shape, expected))


@pytest.mark.slow  # generated linears through the front end and thop
@PROPERTY
@given(linear_case())
def test_linear(case):
    layer, shape, expected = case
    check_tools(*check_formulas(layer, shape, expected))


@pytest.mark.slow  # generated pools through the front end and thop
@PROPERTY
@given(pool_case())
def test_pool(case):
    layer, shape, expected = case
    check_tools(*check_formulas(layer, shape, expected))


@pytest.fixture(autouse=True)
def _forget_prop():
    yield
    api._IN_MEMORY.pop("prop", None)


# ---------------------------------------------------------------------------- every installed counter
class _Attention(nn.Module):
    def __init__(self, embed: int, heads: int):
        super().__init__()
        self.layer = nn.MultiheadAttention(embed, heads, batch_first=True)

    def forward(self, x):
        return self.layer(x, x, x, need_weights=False)[0]


@st.composite
def attention_case(draw):
    heads = draw(st.integers(1, 3))
    embed, length, n = heads * draw(st.integers(1, 4)), draw(st.integers(1, 6)), draw(st.integers(1, 2))
    # q, k, v and out projections E*E each per token; QK^T and AV: L*L*E each per sample
    expected_macc = n * (4 * length * embed * embed + 2 * length * length * embed)
    return _Attention(embed, heads), (n, length, embed), {"params": 4 * embed * embed + 4 * embed,
                                                          "macc": expected_macc}


def _tool_records(job):
    from reconcile.runner import execute

    return execute(job)


@pytest.mark.system  # every counter in its own forked process, a few layers each
@settings(max_examples=5, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(conv_case(), linear_case(), pool_case(), attention_case()))
@example((_Attention(4, 2), (1, 3, 4), {"params": 4 * 16 + 16, "macc": 4 * 3 * 16 + 2 * 3 * 3 * 4}))
def test_every_installed_tool_decomposes_with_residual_zero(case):
    """Each torch counter runs as a job runs (a forked child: several patch torch for good) on a random layer;
    every number it prints for the layer decomposes through its catalogued conventions with residual 0."""
    from reconcile.runner import Job, fork_call

    layer, shape, expected = case
    module = layer if isinstance(layer, _Attention) else nn.Sequential(OrderedDict([("layer", layer)]))
    spec = api.register_module(module, shape, "prop")
    ir = models.layer_ir(spec, "torch")
    target = ir.layer("layer")
    assert target.params == expected["params"]
    if "macc" in expected and expected["macc"] is not None:
        values = T.terms(target)
        assert values[T.MACC] + values[T.ATTN] == expected["macc"]
    for tool in adapters.TOOLS:
        adapter = adapters.get(tool)
        if adapter.FRAMEWORK != "torch" or adapter.unavailable():
            continue
        state, records = fork_call(_tool_records, (Job(tool, spec),), 120)
        assert state == "ok", (tool, state, records)
        for rec in records:
            if rec.layer != "layer" or rec.status != OK or rec.quantity not in ("compute", "params"):
                continue
            entries = catalogue.lookup_all(tool, rec.tool_version, rec.metric, target)
            dec = decompose_catalogued(float(rec.value), T.terms(target), target.batch, rec.quantity, entries)
            assert dec.residual == 0, (tool, rec.metric, rec.value, target, dec.text)
