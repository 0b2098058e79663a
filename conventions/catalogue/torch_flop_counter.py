"""Catalogued conventions of torch.utils.flop_counter.FlopCounterMode, metrics `FLOP [no_grad]`, `FLOP [grad]`.

Formulas are registered in torch/utils/flop_counter.py with `register_flop_formula`; ops without one (pools,
activations, norms, additions, the fused MultiheadAttention and CPU scaled-dot-product kernels) count 0 silently:
the adapter records those as `unsupported` rows. Verified on torch 2.13.0.
"""
from ..terms import ATTN, MACC
from .base import NO_ARITHMETIC_KINDS, PRODUCTS, rule

T, SRC = "torch_flop_counter", "torch/utils/flop_counter.py"
METRICS = ("FLOP [no_grad]", "FLOP [grad]")

CONVENTIONS = tuple(entry for metric in METRICS for entry in (
    rule(T, metric, "conv", {MACC: 2}, "2 FLOPs per multiply-accumulate; bias adds ignored",
         f"{SRC}: conv_flop -> conv_flop_count (prod(out spatial) * prod(kernel) * batch * c_out * c_in * 2)",
         ("2.1", "")),
    rule(T, metric, ("linear", "matmul"), {MACC: 2}, "2 FLOPs per multiply-accumulate; the addmm bias add ignored",
         f"{SRC}: addmm_flop -> mm_flop (m * n * 2 * k), bmm_flop", ("2.1", "")),
    rule(T, metric, "attention", {MACC: 2},
         "the projections (aten.addmm, 2 per MACC, no bias adds) only: on CPU QK^T and AV run in "
         "aten._scaled_dot_product_flash_attention_for_cpu, which has no formula (with grad enabled; under no_grad "
         "the whole layer is the fused aten._native_multi_head_attention and counts 0)",
         f"{SRC}: flop_registry registers only the CUDA flash/efficient/cudnn sdpa kernels", ("2.13", "2.14")),
    rule(T, metric, PRODUCTS, {MACC: 2, ATTN: 2},
         "2 FLOPs per multiply-accumulate of any mm / bmm / addmm / baddbmm, against a weight or between two "
         "activations (an einsum is counted as the bmm it becomes); bias adds ignored",
         f"{SRC}: mm_flop, bmm_flop, addmm_flop, baddbmm_flop", ("2.1", "")),
    rule(T, metric, "sdpa", {},
         "0: on CPU scaled-dot-product attention runs _scaled_dot_product_flash_attention_for_cpu, which has no "
         "formula (only the CUDA flash / efficient / cudnn kernels are registered): QK^T and AV missed silently",
         f"{SRC}: flop_registry (sdpa_flop registered for _scaled_dot_product_{{flash,efficient,cudnn}}_attention)",
         ("2.1", "")),
    rule(T, metric, NO_ARITHMETIC_KINDS, {}, "no formula in flop_registry: counted 0, no warning",
         f"{SRC}: FlopCounterMode.__torch_dispatch__ counts only ops in flop_registry", ("2.1", "")),
))
