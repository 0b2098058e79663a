"""Catalogued conventions of fvcore 0.1.5.post20221221 (facebookresearch/fvcore), metric `flops`.

fvcore/nn/flop_count.py `FlopCountAnalysis` maps traced aten ops to the handles of fvcore/nn/jit_handles.py
through `_DEFAULT_SUPPORTED_OPS`; "we count one fused multiply-add as one flop". Ops with no handle (aten::max_pool2d,
aten::gelu, aten::add, aten::scaled_dot_product_attention, ...) are skipped with a logged warning: the adapter
records those as `unsupported` rows, so they need no entry here.
"""
from ..terms import IN, MACC
from .base import PARAMS_ALL, rule, weights_plus_biases

_V = ("0.1.5", "0.1.6")

CONVENTIONS = (
    rule("fvcore", "flops", "conv", {MACC: 1},
         "1 per multiply-accumulate; conv bias adds not counted ('only multiplication is counted')",
         "fvcore/nn/jit_handles.py: conv_flop_jit -> conv_flop_count (batch * prod(w_shape) * prod(out_shape[2:]))",
         _V),
    rule("fvcore", "flops", ("linear", "matmul"), {MACC: 1}, "1 per multiply-accumulate; bias adds not counted",
         "fvcore/nn/jit_handles.py: linear_flop_jit (prod(input_shape) * out_features), addmm_flop_jit, "
         "matmul_flop_jit", _V),
    rule("fvcore", "flops", "attention", {MACC: 1},
         "the q/k/v/out projections (aten::linear) at 1 per multiply-accumulate; the attention matmuls QK^T and AV "
         "run inside aten::scaled_dot_product_attention, which has no handle: skipped with a warning, counted 0",
         "fvcore/nn/jit_handles.py: linear_flop_jit; flop_count.py: _DEFAULT_SUPPORTED_OPS has no "
         "aten::scaled_dot_product_attention", _V),
    rule("fvcore", "flops", "bn", {IN: 2}, "2 per element (eval, affine): the folded scale and shift",
         "fvcore/nn/jit_handles.py: batchnorm_flop_jit (input numel * (2 if has_affine else 1) when not training)",
         _V),
    rule("fvcore", "flops", "layer_norm", {IN: 5}, "5 per element when affine ('5 is just a rough estimate')",
         "fvcore/nn/jit_handles.py: norm_flop_counter(2) for aten::layer_norm (numel * (5 if has_affine else 4))",
         _V),
    rule("fvcore", "flops", "pool_avg_adaptive", {IN: 1}, "1 per input element",
         "fvcore/nn/flop_count.py: _DEFAULT_SUPPORTED_OPS aten::adaptive_avg_pool2d = elementwise_flop_counter(1, 0)",
         _V),
    rule("fvcore", "flops", "act", {}, "ReLU counted 0 by design (aten::relu is an ignored op, no warning)",
         "fvcore/nn/jit_analysis.py: _IGNORED_OPS contains aten::relu, aten::relu_", _V),
    rule("fvcore", "params", PARAMS_ALL, weights_plus_biases, "weights plus biases, every parameter of the module",
         "fvcore/nn/parameter_count.py: parameter_count"),
)
