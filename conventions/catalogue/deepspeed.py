"""Catalogued conventions of the DeepSpeed flops profiler (microsoft/DeepSpeed), metrics `flops`, `MACs`, `params`.

Every rule is a `_*_flops_compute` function of deepspeed/profiling/flops_profiler/profiler.py, returning
(flops, macs) for one patched functional call; a layer's value is the sum over the calls its forward made
(`FlopsProfiler.start_profile` pre/post hooks). Verified on 0.19.8; bounds are its minor series.
"""
from ..terms import ATTN, BIAS, IN, MACC, OUT
from .base import PARAMS_ALL, rule, weights_plus_biases

T, SRC, _V = "deepspeed", "deepspeed/profiling/flops_profiler/profiler.py", ("0.19", "0.20")
POOLS = ("pool_max", "pool_avg", "pool_max_adaptive", "pool_avg_adaptive")

CONVENTIONS = (
    rule(T, "flops", "conv", {MACC: 2, BIAS: 1}, "2 FLOPs per multiply-accumulate plus the bias adds, as the document",
         f"{SRC}: _conv_flops_compute (2 * overall_conv_macs + out_channels * active_elements_count)", _V),
    rule(T, "flops", ("linear", "matmul"), {MACC: 2}, "2 FLOPs per multiply-accumulate; bias adds not counted",
         f"{SRC}: _linear_flops_compute (2 * input.numel() * out_features), _matmul_flops_compute", _V),
    rule(T, "flops", "attention", {MACC: 2, ATTN: 2},
         "projections through F.linear at 2 per MACC (no bias adds) plus QK^T and AV through the patched "
         "F.scaled_dot_product_attention at 2 per MACC; softmax and scaling inside the kernel not counted",
         f"{SRC}: _linear_flops_compute + _attn_flops_compute", _V),
    rule(T, "flops", POOLS, {IN: 1}, "a pool costs its input elements",
         f"{SRC}: _pool_flops_compute (input.numel())", _V),
    rule(T, "flops", ("act", "softmax"), {IN: 1}, "1 per input element",
         f"{SRC}: _relu_flops_compute, _gelu_flops_compute, _softmax_flops_compute (input.numel())", _V),
    rule(T, "flops", "bn", {IN: 2}, "2 per element (eval, affine)",
         f"{SRC}: _batch_norm_flops_compute (numel * (2 if has_affine else 1) when not training)", _V),
    rule(T, "flops", "layer_norm", {IN: 5}, "5 per element when affine ('estimation')",
         f"{SRC}: _layer_norm_flops_compute (numel * (5 if has_affine else 4))", _V),
    rule(T, "flops", ("add", "mul"), {OUT: 1}, "1 per output element (torch.add / Tensor.add / mul only; the "
         "`+` operator is not patched)", f"{SRC}: _elementwise_flops_compute, _patch_tensor_methods", _V),
    rule(T, "MACs", ("conv", "linear", "matmul"), {MACC: 1}, "1 per multiply-accumulate",
         f"{SRC}: _conv_flops_compute, _linear_flops_compute, _matmul_flops_compute (macs)", _V),
    rule(T, "MACs", "attention", {MACC: 1, ATTN: 1}, "projections plus QK^T and AV, 1 per multiply-accumulate",
         f"{SRC}: _linear_flops_compute + _attn_flops_compute (macs)", _V),
    rule(T, "MACs", POOLS + ("act", "softmax", "bn", "layer_norm", "add", "mul"), {},
         "0 MACs: these rules return (flops, 0)", f"{SRC}: _pool/_relu/_gelu/_batch_norm/_layer_norm_flops_compute",
         _V),
    rule(T, "params", PARAMS_ALL, weights_plus_biases, "weights plus biases of the module (all its parameters)",
         f"{SRC}: FlopsProfiler.reset_profile add_or_reset_attrs (__params__)"),
)
