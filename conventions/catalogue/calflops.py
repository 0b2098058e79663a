"""Catalogued conventions of calflops (MrYxJ/calculate-flops.pytorch), metrics `FLOPs`, `MACs`, `Params`.

A fork of DeepSpeed's flops profiler: every rule is a `_*_flops_compute` function of calflops/pytorch_ops.py,
returning (flops, macs) for one patched functional call, summed per module by calflops/calculate_pipline.py
`CalFlopsPipline.start_flops_calculate`. It patches no F.scaled_dot_product_attention, so attention's QK^T and AV
are not counted. Verified on 0.3.2; bounds are its minor series.
"""
from ..terms import BIAS, IN, MACC, OUT
from .base import PARAMS_ALL, rule, weights_plus_biases

T, SRC, _V = "calflops", "calflops/pytorch_ops.py", ("0.3", "0.4")
POOLS = ("pool_max", "pool_avg", "pool_max_adaptive", "pool_avg_adaptive")

CONVENTIONS = (
    rule(T, "FLOPs", "conv", {MACC: 2, BIAS: 1}, "2 FLOPs per multiply-accumulate plus the bias adds, as the document",
         f"{SRC}: _conv_flops_compute (2 * overall_conv_macs + out_channels * active_elements_count)", _V),
    rule(T, "FLOPs", ("linear", "matmul"), {MACC: 2}, "2 FLOPs per multiply-accumulate; bias adds not counted",
         f"{SRC}: _linear_flops_compute (2 * input.numel() * out_features), _matmul_flops_compute", _V),
    rule(T, "FLOPs", "attention", {MACC: 2},
         "only the projections (F.linear, 2 per MACC, no bias adds): QK^T and AV run in "
         "F.scaled_dot_product_attention, which calflops does not patch", f"{SRC}: _patch_functionals", _V),
    rule(T, "FLOPs", POOLS, {IN: 1}, "a pool costs its input elements", f"{SRC}: _pool_flops_compute (input.numel())",
         _V),
    rule(T, "FLOPs", ("act", "softmax"), {IN: 1}, "1 per input element",
         f"{SRC}: _relu_flops_compute, _gelu_flops_compute, _softmax_flops_compute (input.numel())", _V),
    rule(T, "FLOPs", "bn", {IN: 2}, "2 per element (eval, affine)",
         f"{SRC}: _batch_norm_flops_compute (numel * (2 if has_affine else 1) when not training)", _V),
    rule(T, "FLOPs", "layer_norm", {IN: 5}, "5 per element when affine",
         f"{SRC}: _layer_norm_flops_compute (numel * (5 if has_affine else 4))", _V),
    rule(T, "FLOPs", ("add", "mul"), {OUT: 1}, "1 per output element (torch.add / Tensor.add / mul only)",
         f"{SRC}: _elementwise_flops_compute", _V),
    rule(T, "MACs", ("conv", "linear", "matmul", "attention"), {MACC: 1},
         "1 per multiply-accumulate (attention: the projections only)",
         f"{SRC}: _conv_flops_compute, _linear_flops_compute, _matmul_flops_compute (macs)", _V),
    rule(T, "MACs", POOLS + ("act", "softmax", "bn", "layer_norm", "add", "mul"), {},
         "0 MACs: these rules return (flops, 0)", f"{SRC}: _pool/_relu/_gelu/_batch_norm/_layer_norm_flops_compute",
         _V),
    rule(T, "Params", PARAMS_ALL, weights_plus_biases, "trainable weights plus biases of the module",
         "calflops/calculate_pipline.py: CalFlopsPipline.reset_flops_calculate (__params__)"),
)
