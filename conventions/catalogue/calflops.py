"""Catalogued conventions of calflops (MrYxJ/calculate-flops.pytorch), metrics `FLOPs`, `MACs`, `Params`.

A fork of DeepSpeed's flops profiler: every rule is a `_*_flops_compute` function of calflops/pytorch_ops.py,
returning (flops, macs) for one patched functional call, summed per module by calflops/calculate_pipline.py
`CalFlopsPipline.start_flops_calculate`. It patches no F.scaled_dot_product_attention, so attention's QK^T and AV
are not counted. Verified on 0.3.2; bounds are its minor series.
"""
from ..terms import MACC
from .base import PARAMS_ALL, rule, weights_plus_biases
from .flops_profiler_family import shared_rules

T, SRC, _V = "calflops", "calflops/pytorch_ops.py", ("0.3", "0.4")

CONVENTIONS = shared_rules(T, SRC, _V, flops="FLOPs", macs="MACs") + (
    rule(T, "FLOPs", "attention", {MACC: 2},
         "only the projections (F.linear, 2 per MACC, no bias adds): QK^T and AV run in "
         "F.scaled_dot_product_attention, which calflops does not patch", f"{SRC}: _patch_functionals", _V),
    rule(T, "MACs", "attention", {MACC: 1}, "1 per multiply-accumulate of the projections only",
         f"{SRC}: _linear_flops_compute (macs)", _V),
    rule(T, "Params", PARAMS_ALL, weights_plus_biases, "trainable weights plus biases of the module",
         "calflops/calculate_pipline.py: CalFlopsPipline.reset_flops_calculate (__params__)"),
)
