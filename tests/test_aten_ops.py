"""The op table (conventions/aten_ops.py) is the products law's oracle: it must know every op the forwards we test
dispatch, agree with torch's own tags on which ops are element-wise, views or reductions, and count each product
op by hand arithmetic."""
import collections

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from conventions import aten_ops
from conventions.aten_ops import FREE, PRODUCT, Arg
from reference_models import DEFAULT_SUITE
from reconcile.models import reference, torch_module
from zoo import hf_zoo


class OpNames(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name, namespace = func._overloadpacket.__name__, getattr(func, "namespace", "aten")
        self.ops[name if namespace == "aten" else f"{namespace}::{name}"] += 1
        return func(*args, **(kwargs or {}))


def dispatched(model, example) -> collections.Counter:
    # both grad modes: under no_grad eval modules take fused fast paths (_native_multi_head_attention, ...)
    seen = collections.Counter()
    for grad in (True, False):
        with torch.set_grad_enabled(grad), OpNames() as names:
            model(example)
        seen.update(names.ops)
    return seen


def test_torch_tags_agree_with_the_table():
    """native_functions.yaml tags every element-wise op `pointwise` and every view `is_view`: none of them may be
    listed as a product, and every one the table lists must be product-free."""
    wrong = []
    for name in dir(torch.ops.aten):
        packet = getattr(torch.ops.aten, name, None)
        if not isinstance(packet, torch._ops.OpOverloadPacket):
            continue
        overloads = [getattr(packet, o) for o in packet.overloads()]
        pointwise = any(torch.Tag.pointwise in o.tags for o in overloads)
        view = any(o.is_view for o in overloads)
        if (pointwise or view) and aten_ops.category(name) not in (FREE, aten_ops.UNSUPPORTED):
            wrong.append(name)
    assert not wrong, wrong


def test_every_product_op_of_torch_flop_counter_is_a_product():
    # torch/utils/flop_counter.py registers formulas for the ops it counts; backward kernels are not a forward's
    from torch.utils.flop_counter import flop_registry

    forward = [op.__name__ for op in flop_registry
               if isinstance(op, torch._ops.OpOverloadPacket) and "backward" not in op.__name__]
    assert forward and all(aten_ops.category(op) == PRODUCT for op in forward), \
        [op for op in forward if aten_ops.category(op) != PRODUCT]


@pytest.mark.slow
@pytest.mark.parametrize("name", DEFAULT_SUITE)
def test_the_default_suite_dispatches_only_known_ops(name):
    spec = reference(name)
    model = torch_module(spec).eval()
    ops = dispatched(model, torch.zeros(*spec.input_shape))
    assert not [op for op in ops if aten_ops.category(op) == aten_ops.UNSUPPORTED]


@pytest.mark.slow
@pytest.mark.parametrize("model_type", ["vit", "gpt2", "bert", "llama", "swin", "convnext"])
def test_the_transformers_test_models_dispatch_only_known_ops(model_type):
    model = hf_zoo.small(model_type)
    shape = hf_zoo.small_input_shape(model_type)
    example = torch.zeros(*shape, dtype=torch.long if len(shape) == 2 else torch.float32)
    ops = dispatched(model, example)
    assert not [op for op in ops if aten_ops.category(op) == aten_ops.UNSUPPORTED]


def test_encoder_layer_fused_fast_path_has_a_formula():
    # under no_grad an eval nn.TransformerEncoderLayer runs aten._transformer_encoder_layer_fwd: d 256, 8 heads,
    # ff 1024, T 64: qkv 64*256*768 + out 64*256*256 + FFN 2*64*256*1024 against weights, QK^T + AV 2*64*64*256
    model = hf_zoo.encoder_layer()
    with torch.no_grad(), OpNames() as names:
        model(torch.zeros(1, 64, 256))
    assert "_transformer_encoder_layer_fwd" in names.ops
    args = (Arg((1, 64, 256)), 256, 8, Arg((768, 256)), Arg((768,)), Arg((256, 256)), Arg((256,)), False, False,
            1e-5, Arg((256,)), Arg((256,)), Arg((256,)), Arg((256,)), Arg((1024, 256)), Arg((1024,)),
            Arg((256, 1024)), Arg((256,)))
    by_hand = 64 * 256 * 768 + 64 * 256 * 256 + 2 * 64 * 256 * 1024 + 2 * 64 * 64 * 256
    assert aten_ops.products("_transformer_encoder_layer_fwd", args, {}, (1, 64, 256)) == by_hand == 52_428_800


def test_product_formulas_by_hand():
    p = aten_ops.products
    assert p("mm", (Arg((3, 4)), Arg((4, 5))), {}, (3, 5)) == 3 * 4 * 5
    assert p("addmm", (Arg((5,)), Arg((3, 4)), Arg((4, 5))), {}, (3, 5)) == 3 * 4 * 5
    assert p("addmm_", (Arg((3, 5)), Arg((3, 4)), Arg((4, 5))), {}, (3, 5)) == 60  # in-place: the same op
    assert p("bmm", (Arg((2, 3, 4)), Arg((2, 4, 5))), {}, (2, 3, 5)) == 2 * 3 * 4 * 5
    assert p("addbmm", (Arg((3, 5)), Arg((2, 3, 4)), Arg((2, 4, 5))), {}, (3, 5)) == 2 * 3 * 4 * 5  # batch summed
    assert p("mv", (Arg((3, 4)), Arg((4,))), {}, (3,)) == 12 and p("dot", (Arg((7,)), Arg((7,))), {}, ()) == 7
    # conv: batch 2 x weight 8*3*3*3 x output positions 6*6; transposed: input positions 5*5
    conv = (Arg((2, 3, 8, 8)), Arg((8, 3, 3, 3)), None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1)
    assert p("convolution", conv, {}, (2, 8, 6, 6)) == 2 * 216 * 36
    convt = (Arg((2, 8, 5, 5)), Arg((8, 4, 4, 4)), None, [2, 2], [1, 1], [1, 1], True, [0, 0], 1)
    assert p("convolution", convt, {}, (2, 4, 10, 10)) == 2 * 512 * 25
    # SDPA (B, H, L, E): 2*4 rows of 17 queries x 17 keys x (8 + 8)
    assert p("_scaled_dot_product_flash_attention_for_cpu", (Arg((2, 4, 17, 8)),) * 3, {}, (2, 4, 17, 8)) == \
        2 * 4 * 17 * 17 * 16
    # grouped: 12 routed rows, each against its own expert's (6 x 10) weight; rows past offs[-1] = 10 are skipped
    grouped = (Arg((12, 6)), Arg((4, 6, 10)))
    assert p("_grouped_mm", grouped, {"offs": Arg((4,))}, (12, 10)) == 12 * 6 * 10
    assert p("_grouped_mm", grouped, {"offs": Arg((4,), last=10)}, (12, 10)) == 10 * 6 * 10
    assert p("_grouped_mm", (Arg((4, 3, 6)), Arg((4, 6, 10))), {}, (4, 3, 10)) == 4 * 3 * 6 * 10
    # one LSTM layer and direction (oneDNN): 10 rows (5 steps x batch 2) x (W_ih 64x8 + W_hh 64x16)
    lstm = (Arg((5, 2, 8)), Arg((64, 8)), Arg((64, 16)), Arg((64,)), Arg((64,)), Arg((2, 16)), Arg((2, 16)), False,
            [], 0, 16, 1, True, False, False, False)
    assert p("mkldnn_rnn_layer", lstm, {}, (5, 2, 16)) == 10 * (64 * 8 + 64 * 16)
    # the composite aten.gru(input, hx, params, ...): W_ih (48x8), W_hh (48x16), biases are not products
    params = [Arg((48, 8)), Arg((48, 16)), Arg((48,)), Arg((48,))]
    assert p("gru", (Arg((5, 2, 8)), Arg((1, 2, 16)), params, True, 1, 0.0, False, False, False), {}, (5, 2, 16)) \
        == 10 * 48 * 24


def test_categories():
    assert aten_ops.category("_fft_r2c") == aten_ops.NO_MACC_CONVENTION
    assert aten_ops.category("_linalg_svd") == aten_ops.NO_MACC_CONVENTION
    assert aten_ops.category("relu_") == aten_ops.category("__iadd__") == aten_ops.category("view") == FREE
    assert aten_ops.category("_foreach_mul_") == FREE and aten_ops.category("_foreach_mm") == PRODUCT
    assert aten_ops.category("transformers::grouped_mm_fallback") == PRODUCT
    assert aten_ops.category("some_namespace::mystery") == aten_ops.category("_foobar") == aten_ops.UNSUPPORTED
