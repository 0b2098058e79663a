"""Catalogued conventions of fvcore 0.1.5.post20221221 (facebookresearch/fvcore), metric `flops`.

fvcore/nn/flop_count.py `FlopCountAnalysis` maps traced aten ops to the handles of fvcore/nn/jit_handles.py
through `_DEFAULT_SUPPORTED_OPS`; "we count one fused multiply-add as one flop". Ops with no handle (aten::max_pool2d,
aten::gelu, aten::add, aten::scaled_dot_product_attention, ...) are skipped with a logged warning: the adapter
records those as `unsupported` rows, so they need no entry here.
"""
from ..terms import ATTN, BIAS_PARAMS, IN, MACC, OUT, TIED, WEIGHTS
from .base import PARAMS_ALL, rule

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
    rule("fvcore", "flops", "matmul", {MACC: 1, ATTN: 1},
         "1 per multiply-accumulate, against a weight or between activations; addmm's bias add not counted",
         "fvcore/nn/jit_handles.py: matmul_flop_jit (aten::matmul, aten::mm), bmm_flop_jit, addmm_flop_jit", _V),
    rule("fvcore", "flops", "einsum", {MACC: 2, ATTN: 2},
         "numpy's einsum_path 'Optimized FLOP count' (2 per multiply-accumulate) as printed, to 4 significant "
         "digits ('1.850e+04'), then halved and floored: exact only while the count has 4 digits or fewer",
         "fvcore/nn/jit_handles.py: einsum_flop_jit (np.einsum_path(...)[1], float(line.split(':')[-1]) / 2)", _V,
         significant_digits=4, post_divide=2),
    rule("fvcore", "flops", "einsum", {MACC: 1, ATTN: 1},
         "exact for the two equations it special-cases ('abc,abd->acd', 'abc,adc->adb')",
         "fvcore/nn/jit_handles.py: einsum_flop_jit", _V),
    rule("fvcore", "flops", "layer_norm", {IN: 4}, "4 per element without an affine weight",
         "fvcore/nn/jit_handles.py: norm_flop_counter (numel * (5 if has_affine else 4))", _V,
         when={"affine": (False,)}),
    rule("fvcore", "flops", "norm", {IN: 5}, "aten::group_norm: 5 per element when affine ('rough estimate')",
         "fvcore/nn/jit_handles.py: norm_flop_counter(2) for aten::group_norm", _V,
         when={"aten": ("native_group_norm",)}),
    rule("fvcore", "flops", "interpolate", {OUT: 1}, "nearest upsampling: 1 per output element",
         "fvcore/nn/flop_count.py: aten::upsample_nearest2d = elementwise_flop_counter(0, 1)", _V,
         when={"aten": ("upsample_nearest2d",)}),
    rule("fvcore", "flops", "interpolate", {OUT: 4}, "bilinear upsampling: 4 per output element",
         "fvcore/nn/flop_count.py: aten::upsample_bilinear2d = elementwise_flop_counter(0, 4)", _V,
         when={"aten": ("upsample_bilinear2d",)}),
    rule("fvcore", "flops", ("sdpa", "add", "mul", "softmax", "concat", "embedding", "norm", "reduce_mean",
                             "interpolate", "elementwise", "pool_max", "pool_avg"), {},
         "no handle (aten::scaled_dot_product_attention, aten::add, aten::mul, aten::softmax, aten::mean, "
         "aten::embedding, aten::max_pool2d, ...): skipped with an 'Unsupported operator' warning, counted 0",
         "fvcore/nn/flop_count.py: _DEFAULT_SUPPORTED_OPS; jit_analysis.py: _warn_unsupported_ops", _V),
    rule("fvcore", "params", PARAMS_ALL, {WEIGHTS: 1, BIAS_PARAMS: 1, TIED: -1},
         "weights plus biases of the module; a tied weight only under its first name (named_parameters() lists "
         "each parameter once)", "fvcore/nn/parameter_count.py: parameter_count (model.named_parameters())"),
)
