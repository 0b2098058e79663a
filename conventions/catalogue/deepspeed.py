"""Catalogued conventions of the DeepSpeed flops profiler (microsoft/DeepSpeed), metrics `flops`, `MACs`, `params`.

Every rule is a `_*_flops_compute` function of deepspeed/profiling/flops_profiler/profiler.py, returning
(flops, macs) for one patched functional call; a layer's value is the sum over the calls its forward made
(`FlopsProfiler.start_profile` pre/post hooks). Verified on 0.19.8; bounds are its minor series.
"""
from ..terms import ATTN, MACC
from .base import PARAMS_ALL, rule, weights_plus_biases
from .flops_profiler_family import shared_rules

T, SRC, _V = "deepspeed", "deepspeed/profiling/flops_profiler/profiler.py", ("0.19", "0.20")

CONVENTIONS = shared_rules(T, SRC, _V, flops="flops", macs="MACs") + (
    rule(T, "flops", "attention", {MACC: 2, ATTN: 2},
         "projections through F.linear at 2 per MACC (no bias adds) plus QK^T and AV through the patched "
         "F.scaled_dot_product_attention at 2 per MACC; softmax and scaling inside the kernel not counted",
         f"{SRC}: _linear_flops_compute + _attn_flops_compute", _V),
    rule(T, "MACs", "attention", {MACC: 1, ATTN: 1}, "projections plus QK^T and AV, 1 per multiply-accumulate",
         f"{SRC}: _linear_flops_compute + _attn_flops_compute (macs)", _V),
    rule(T, "params", PARAMS_ALL, weights_plus_biases, "weights plus biases of the module (all its parameters)",
         f"{SRC}: FlopsProfiler.reset_profile add_or_reset_attrs (__params__)"),
)
