"""The thop, torchstat and torchsummary adapters on the reference models, called directly (no runner).

Expected numbers are hand arithmetic from the tools' own rules (cited per file/function) or what the tools printed
for the document's LeNet as recorded in design.md: thop 0.1.1 2,293,000 / 431,080; torchstat 0.0.7 MAdd
4,596,530, Flops 2,322,440; torchsummary 1.5.1 params 520, 0, 25,050, 0, 400,500, 5,010. LeNet here is the
document's version ("lenet", F.relu after ip1; the document names ip1/ip2 fc1/fc2), batch 1.

torchstat overwrites `__call__` on nn.Module classes; the adapter undoes it, and the `module_calls_restored`
fixture undoes it again after every torchstat test so a broken adapter cannot leak into other tests.
"""
from __future__ import annotations

import functools

import pytest
import torch.nn as nn

from reconcile.adapters import thop as thop_adapter
from reconcile.adapters import torchstat as torchstat_adapter
from reconcile.adapters import torchsummary as torchsummary_adapter
from reconcile.models import reference
from reconcile.records import COMPUTE, MEMORY, OK, PARAMS, TOTAL, UNSUPPORTED, Emitter

needs = {a: pytest.mark.skipif(bool(a.unavailable()), reason=str(a.unavailable()))
         for a in (thop_adapter, torchstat_adapter, torchsummary_adapter)}


def run(adapter, model: str, batch: int | None = None):
    return adapter.count(reference(model, batch), Emitter(model, "torch", adapter.TOOL, adapter.version()))


@functools.lru_cache(maxsize=None)
def cached(adapter, model: str):
    """thop and torchsummary leave no global state, so their records can be shared between tests."""
    return tuple(run(adapter, model))


def values(records, metric: str) -> dict:
    return {r.layer: r.value for r in records if r.metric == metric}


def one(records, layer: str, metric: str):
    found = [r for r in records if r.layer == layer and r.metric == metric]
    assert len(found) == 1, found
    return found[0]


def all_module_classes() -> list[type]:
    seen, todo = [], [nn.Module]
    while todo:
        cls = todo.pop()
        if cls not in seen:
            seen.append(cls)
            todo.extend(cls.__subclasses__())
    return seen


def call_attributes(classes=None) -> dict:
    """`__call__` defined on each nn.Module class (None: inherited). Pass `classes` to compare the same set: tracing
    (torch.fx GraphModule) creates new classes with their own `__call__` along the way."""
    return {cls: cls.__dict__.get("__call__") for cls in (classes or all_module_classes())}


@pytest.fixture
def module_calls_restored():
    before = call_attributes()
    yield before
    for cls, attr in before.items():
        if cls.__dict__.get("__call__") is not attr:
            if attr is None:
                delattr(cls, "__call__")
            else:
                setattr(cls, "__call__", attr)


# ---------------------------------------------------------------- thop 0.1.1 (thop/profile.py profile, dfs_count)

@needs[thop_adapter]
def test_thop_lenet_per_layer_macs_and_params():
    records = cached(thop_adapter, "lenet")
    # thop/vision/calc_func.py calculate_conv2d_flops: out elements * c_in/G * k_h*k_w, no bias term.
    # calculate_linear: in_features * out elements. MaxPool2d -> zero_ops.
    assert values(records, "macs") == {
        "conv1": 5 * 5 * 1 * 20 * 24 * 24,  # 288,000
        "pool1": 0,
        "conv2": 5 * 5 * 20 * 50 * 8 * 8,  # 1,600,000
        "pool2": 0,
        "ip1": 800 * 500,  # 400,000
        "ip2": 500 * 10,  # 5,000
        TOTAL: 288_000 + 1_600_000 + 400_000 + 5_000,  # 2,293,000 as thop 0.1.1 prints
    }
    assert values(records, "macs")[TOTAL] == 2_293_000
    assert values(records, "params") == {
        "conv1": 5 * 5 * 1 * 20 + 20, "pool1": 0, "conv2": 5 * 5 * 20 * 50 + 50, "pool2": 0,
        "ip1": 800 * 500 + 500, "ip2": 500 * 10 + 10, TOTAL: 431_080}
    assert {r.status for r in records} == {OK}
    assert one(records, "conv1", "macs").quantity == COMPUTE and one(records, "conv1", "params").quantity == PARAMS
    assert one(records, "conv1", "macs").layer_kind == "conv" and one(records, "pool1", "macs").layer_kind == "pool_max"
    # F.relu after ip1 is invisible to module hooks: no row for it.
    assert "relu" not in values(records, "macs") and "relu1" not in values(records, "macs")


@needs[thop_adapter]
def test_thop_scales_with_batch():
    records = run(thop_adapter, "lenet", batch=4)
    assert values(records, "macs")[TOTAL] == 4 * 2_293_000
    assert values(records, "params")[TOTAL] == 431_080


@needs[thop_adapter]
def test_thop_mha_is_unsupported_not_a_fake_zero():
    records = cached(thop_adapter, "mha")
    attn = [r for r in records if r.layer == "attn"]
    assert {(r.metric, r.status, r.value) for r in attn} == {("macs", UNSUPPORTED, None),
                                                            ("params", UNSUPPORTED, None)}
    assert all("no rule for MultiheadAttention" in r.message and "0 ops, 0 params" in r.message for r in attn)
    assert one(records, "attn", "macs").layer_kind == "attention"
    # The totals stay as thop reports them (0 and 0, though the layer holds 4*64*64 + 4*64 = 16,640 params).
    total_macs, total_params = one(records, TOTAL, "macs"), one(records, TOTAL, "params")
    assert (total_macs.value, total_params.value) == (0, 0)
    assert total_macs.status == total_params.status == OK
    assert "attn (MultiheadAttention)" in total_params.message


@needs[thop_adapter]
def test_thop_block_counts_layer_norm_and_flags_gelu():
    records = cached(thop_adapter, "block")
    # thop/vision/basic_hooks.py count_normalization: 2 * input elements, x2 with elementwise_affine.
    assert values(records, "macs")["ln1"] == 2 * 2 * 16 * 64  # 4,096
    assert values(records, "macs")["fc1"] == 16 * 64 * 256  # 262,144: a Linear on (1, 16, 64) does 16 rows
    assert one(records, "act", "macs").status == UNSUPPORTED
    assert values(records, "macs")[TOTAL] == 2 * 4_096 + 2 * 262_144  # 532,480
    assert values(records, "params")[TOTAL] == 2 * 128 + (64 * 256 + 256) + (256 * 64 + 64)  # 33,344


# --------------------------------------------- torchstat 0.0.7 (model_hook.py ModelHook, statistics.py, compute_*)

@needs[torchstat_adapter]
def test_torchstat_lenet_madd_flops(module_calls_restored):
    records = run(torchstat_adapter, "lenet")
    # compute_madd.py compute_Conv2d_madd: (k*k*c_in/G muls + k*k*c_in/G - 1 adds + 1 bias add) per output;
    # compute_MaxPool2d_madd: (k*k - 1) per output; compute_Linear_madd: n_out * (2*n_in - 1), bias ignored.
    assert values(records, "MAdd") == {
        "conv1": 2 * 5 * 5 * 1 * 20 * 24 * 24,  # 576,000
        "pool1": (2 * 2 - 1) * 20 * 12 * 12,  # 8,640
        "conv2": 2 * 5 * 5 * 20 * 50 * 8 * 8,  # 3,200,000
        "pool2": (2 * 2 - 1) * 50 * 4 * 4,  # 2,400
        "ip1": 500 * (800 + 799),  # 799,500
        "ip2": 10 * (500 + 499),  # 9,990
        TOTAL: 4_596_530,
    }
    # compute_flops.py compute_Conv2d_flops: MACC + one bias add per output; compute_Pool2d_flops: input elements;
    # compute_Linear_flops: n_in * n_out (no bias).
    assert values(records, "Flops") == {
        "conv1": 288_000 + 20 * 24 * 24,  # 299,520
        "pool1": 20 * 24 * 24,  # 11,520
        "conv2": 1_600_000 + 50 * 8 * 8,  # 1,603,200
        "pool2": 50 * 8 * 8,  # 3,200
        "ip1": 800 * 500,  # 400,000
        "ip2": 500 * 10,  # 5,000
        TOTAL: 2_322_440,
    }
    assert values(records, "params")[TOTAL] == 431_080
    assert one(records, "ip1", "MAdd").quantity == COMPUTE and one(records, "ip1", "memory(MB)").quantity == MEMORY
    # model_hook.py wrap_call: inference_memory = output elements * 4 / 1024**2; compute_memory.py
    # compute_Conv2d_memory: read (input + params) * itemsize, write output * itemsize.
    assert values(records, "memory(MB)")["conv1"] == 20 * 24 * 24 * 4 / 1024 ** 2
    assert (values(records, "MemRead(B)")["conv1"], values(records, "MemWrite(B)")["conv1"]) == (
        (28 * 28 + 520) * 4, 20 * 24 * 24 * 4)
    assert {r.status for r in records} == {OK}


@needs[torchstat_adapter]
def test_torchstat_restores_module_calls(module_calls_restored):
    import torch

    before = module_calls_restored
    run(torchstat_adapter, "lenet")
    assert call_attributes(before) == before
    assert "__call__" not in nn.Conv2d.__dict__ and "__call__" not in nn.Linear.__dict__
    assert nn.Module.__call__ is before[nn.Module]
    # and after a crash half-way through its forward
    with pytest.raises(torchstat_adapter.TorchstatError):
        run(torchstat_adapter, "block")
    assert call_attributes(before) == before
    # a plain forward hook fires again (torchstat's wrap_call would also have set buffers on the module)
    conv = nn.Conv2d(1, 1, 1)
    conv(torch.zeros(1, 1, 2, 2))
    assert "MAdd" not in dict(conv.named_buffers())


@needs[torchstat_adapter]
@needs[thop_adapter]
def test_torchstat_then_thop_in_one_process_matches_thop_alone(module_calls_restored):
    alone = [(r.layer, r.metric, r.value) for r in cached(thop_adapter, "sepnet")]
    run(torchstat_adapter, "sepnet")
    after = [(r.layer, r.metric, r.value) for r in run(thop_adapter, "sepnet")]
    assert after == alone
    assert values(run(torchstat_adapter, "lenet"), "MAdd")[TOTAL] == 4_596_530  # not double-wrapped either


@needs[torchstat_adapter]
def test_torchstat_not_supported_layers_are_unsupported_rows(module_calls_restored):
    records = run(torchstat_adapter, "sepnet")
    gap = {r.metric: r for r in records if r.layer == "gap"}
    for metric in ("MAdd", "Flops", "MemRead(B)", "MemWrite(B)"):
        assert gap[metric].status == UNSUPPORTED and gap[metric].value is None
        assert "AdaptiveAvgPool2d" in gap[metric].message
    assert gap["params"].status == OK and gap["params"].value == 0
    # conv1 (no bias) MAdd = (2*27 - 1) * 16*32*32 = 868,352; bn: 4 * elements; relu: elements; pool (9-1)*out;
    # dw: 2*9*16*16*16; pw: 2*16*32*16*16; fc: 10 * (2*32 - 1)
    expected = ((2 * 27 - 1) * 16 * 32 * 32 + 4 * 16 * 32 * 32 + 16 * 32 * 32 + 8 * 16 * 16 * 16
                + 2 * 9 * 16 * 16 * 16 + 2 * 16 * 32 * 16 * 16 + 10 * 63)
    assert one(records, TOTAL, "MAdd").value == expected == 1_319_542
    assert "gap (AdaptiveAvgPool2d" in one(records, TOTAL, "MAdd").message


@needs[torchstat_adapter]
def test_torchstat_runs_batch_one_and_says_so(module_calls_restored):
    records = run(torchstat_adapter, "lenet", batch=4)
    total = one(records, TOTAL, "MAdd")
    assert total.value == 4_596_530 and "per sample" in total.message and "batch 4" in total.message


@needs[torchstat_adapter]
def test_torchstat_mha_and_block(module_calls_restored):
    records = run(torchstat_adapter, "mha")
    # nn.MultiheadAttention is not a leaf; its only leaf, out_proj, is never called as a module.
    out_proj = [r for r in records if r.layer == "attn.out_proj"]
    assert out_proj and all(r.status == UNSUPPORTED and r.value is None for r in out_proj)
    assert (one(records, TOTAL, "MAdd").value, one(records, TOTAL, "Flops").value) == (0, 0)
    with pytest.raises(torchstat_adapter.TorchstatError) as info:
        run(torchstat_adapter, "block")
    message = str(info.value)
    assert "fc1" in message and "Linear" in message and "compute_Linear_madd" in message
    assert "AssertionError" in message


def test_torchstat_parses_not_supported_lines():
    printed = "[MAdd]: GELU is not supported!\n[Memory]: LayerNorm is not supported!\nother\n"
    assert torchstat_adapter.parse_not_supported(printed) == {
        "MAdd": {"GELU"}, "MemRead(B)": {"LayerNorm"}, "MemWrite(B)": {"LayerNorm"}}


# ----------------------------------------------------------------- torchsummary 1.5.1 (torchsummary.py summary)

@needs[torchsummary_adapter]
def test_torchsummary_lenet_params():
    records = cached(torchsummary_adapter, "lenet")
    assert values(records, "Param #") == {
        "conv1": 5 * 5 * 1 * 20 + 20,  # 520
        "pool1": 0,
        "conv2": 5 * 5 * 20 * 50 + 50,  # 25,050
        "pool2": 0,
        "ip1": 800 * 500 + 500,  # 400,500
        "ip2": 500 * 10 + 10,  # 5,010
    }
    assert [r.layer for r in records if r.metric == "Param #"] == ["conv1", "pool1", "conv2", "pool2", "ip1", "ip2"]
    assert values(records, "Total params")[TOTAL] == 431_080
    assert values(records, "Trainable params")[TOTAL] == 431_080
    conv1 = one(records, "conv1", "Param #")
    assert "Conv2d-1" in conv1.message and "[-1, 20, 24, 24]" in conv1.message and conv1.layer_kind == "conv"
    # summary: outputs summed per sample, x2 for gradients, 4 bytes: 2 * 18,910 * 4 / 1024**2 = 0.144 -> "0.14"
    assert values(records, "Forward/backward pass size (MB)")[TOTAL] == round(
        2 * (11_520 + 2_880 + 3_200 + 800 + 500 + 10) * 4 / 1024 ** 2, 2) == 0.14
    assert values(records, "Params size (MB)")[TOTAL] == round(431_080 * 4 / 1024 ** 2, 2)
    assert one(records, TOTAL, "Params size (MB)").quantity == MEMORY


@needs[torchsummary_adapter]
def test_torchsummary_maps_relu_module_rows():
    records = cached(torchsummary_adapter, "lenet_relu_module")
    relu = one(records, "relu1", "Param #")
    assert relu.value == 0 and "ReLU-6" in relu.message


@needs[torchsummary_adapter]
def test_torchsummary_mha_raises_a_clear_error():
    with pytest.raises(torchsummary_adapter.TorchsummaryError) as info:
        run(torchsummary_adapter, "mha")
    message = str(info.value)
    assert "attn" in message and "MultiheadAttention" in message and "NoneType" in message
    assert "AttributeError" in message and "torchsummary.py" in message


def test_torchsummary_parses_the_printed_table():
    printed = """----------------------------------------------------------------
        Layer (type)               Output Shape         Param #
================================================================
            Conv2d-1           [-1, 20, 24, 24]             520
              LSTM-2    [[-1, 5, 8], [-1, 5, 8]]           1,024
================================================================
Total params: 1,544
Trainable params: 1,544
Non-trainable params: 0
----------------------------------------------------------------
Input size (MB): 0.00
Forward/backward pass size (MB): 0.14
----------------------------------------------------------------
"""
    rows, totals = torchsummary_adapter.parse_table(printed)
    assert rows == [("Conv2d-1", "[-1, 20, 24, 24]", 520), ("LSTM-2", "[[-1, 5, 8], [-1, 5, 8]]", 1024)]
    assert totals == {"Total params": 1544, "Trainable params": 1544, "Non-trainable params": 0,
                      "Input size (MB)": 0.0, "Forward/backward pass size (MB)": 0.14}


# ------------------------------------------------------------------------------------------- protocol

@pytest.mark.parametrize("adapter", [thop_adapter, torchstat_adapter, torchsummary_adapter])
def test_adapter_protocol(adapter):
    assert adapter.FRAMEWORK == "torch" and adapter.WORKER == "torch"
    assert adapter.TOOL in ("thop", "torchstat", "torchsummary")
    assert adapter.unavailable() is None and adapter.version() != "not installed"
