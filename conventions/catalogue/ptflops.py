"""Catalogued conventions of ptflops (sovrasov/flops-counter.pytorch), both backends, metric `MACs`.

ptflops_pytorch: ptflops/pytorch_engine.py `get_flops_pytorch` = module forward hooks (ptflops/pytorch_ops.py
`MODULES_MAPPING`) + patched functionals (`FUNCTIONAL_MAPPING`, `TENSOR_OPS_MAPPING`, summed into the total). The
adapter's per-layer value is both parts, so layers whose module forward calls a patched functional (pools,
ReLU, GELU) show the double count as a coefficient 2.
ptflops_aten: ptflops/aten_engine.py `FlopCounterMode` counts only the aten ops of ptflops/aten_ops.py
`ATEN_OPS_MAPPING` (mm, matmul, addmm, bmm, convolution): everything else is a silent 0.
Verified on 0.7.5; bounds are its minor series.
"""
from ..terms import ATTN, BIAS, IN, MACC, OUT, SOFTMAX_TERM
from .base import NO_ARITHMETIC_KINDS, PARAMS_ALL, PRODUCTS, rule, weights_plus_biases

P, A, _V = "ptflops_pytorch", "ptflops_aten", ("0.7", "0.8")
OPS = "ptflops/pytorch_ops.py"
POOLS = ("pool_max", "pool_avg", "pool_max_adaptive", "pool_avg_adaptive")

CONVENTIONS = (
    rule(P, "MACs", "conv", {MACC: 1, BIAS: 1}, "1 per multiply-accumulate plus the bias adds",
         f"{OPS}: conv_flops_counter_hook (conv_per_position_flops * active_elements + bias_flops)", _V),
    rule(P, "MACs", "linear", {MACC: 1, BIAS: 1}, "1 per multiply-accumulate plus the bias adds, per token",
         f"{OPS}: linear_flops_counter_hook ((in * out + out) * prod(input.shape[:-1]))", _V),
    rule(P, "MACs", POOLS, {IN: 2},
         "COUNTED TWICE: the module hook counts the input elements and so does the patched F.*pool* its forward calls",
         f"{OPS}: pool_flops_counter_hook + _numel_functional_flops_hook via pytorch_engine.py patch_functional", _V),
    rule(P, "MACs", "act", {OUT: 1, IN: 1},
         "COUNTED TWICE for nn.ReLU/nn.GELU: the module hook counts the output elements, the patched F.relu/F.gelu "
         "its forward calls counts the input elements (a bare F.relu is counted once)",
         f"{OPS}: relu_flops_counter_hook + _numel_functional_flops_hook via pytorch_engine.py patch_functional", _V),
    rule(P, "MACs", "act", {OUT: 1}, "a bare functional F.relu/F.gelu: counted once, by the patched function only",
         "ptflops/pytorch_engine.py: patch_functional -> _numel_functional_flops_hook", _V),
    rule(P, "MACs", "bn", {IN: 2}, "2 per element when affine",
         f"{OPS}: bn_flops_counter_hook (numel, x2 if module.affine)", _V),
    rule(P, "MACs", "norm", {IN: 2}, "nn.GroupNorm: 2 per element when affine",
         f"{OPS}: MODULES_MAPPING[nn.GroupNorm] = bn_flops_counter_hook (numel, x2 if module.affine)", _V,
         when={"op": ("GroupNorm",), "affine": (True,)}),
    rule(P, "MACs", "norm", {IN: 1}, "nn.GroupNorm without an affine weight: 1 per element",
         f"{OPS}: MODULES_MAPPING[nn.GroupNorm] = bn_flops_counter_hook (numel, x2 if module.affine)", _V,
         when={"op": ("GroupNorm",), "affine": (False,)}),
    rule(P, "MACs", "layer_norm", {IN: 1},
         "1 per element: bn_flops_counter_hook doubles only when the module has `affine`, which LayerNorm names "
         "`elementwise_affine`", f"{OPS}: MODULES_MAPPING[nn.LayerNorm] = bn_flops_counter_hook", _V),
    rule(P, "MACs", "attention", {MACC: 1, BIAS: 1, ATTN: 1, SOFTMAX_TERM: 1, OUT: 1},
         "projections with bias adds, QK^T and AV, 1 per softmax element and 1 per query element for the scaling; "
         "counted again if the forward reaches patched torch.bmm / F.softmax (need_weights=True)",
         f"{OPS}: multihead_attention_counter_hook", _V),
    rule(P, "MACs", ("matmul",), {MACC: 1}, "1 per multiply-accumulate",
         f"{OPS}: _matmul_tensor_flops_hook via pytorch_engine.py patch_tensor_ops", _V),
    rule(P, "MACs", ("softmax",), {IN: 1}, "1 per input element", f"{OPS}: _numel_functional_flops_hook", _V),
    rule(P, "params", PARAMS_ALL, weights_plus_biases, "trainable weights plus biases of the hooked module",
         "ptflops/pytorch_engine.py: add_flops_counter_variable_or_reset (get_model_parameters_number)"),
    rule(A, "MACs", "conv", {MACC: 1, BIAS: 1}, "1 per multiply-accumulate plus the bias adds",
         "ptflops/aten_ops.py: conv_flop -> conv_flop_count(bias=b is not None)", _V),
    rule(A, "MACs", "linear", {MACC: 1, BIAS: 1}, "1 per multiply-accumulate plus the bias adds (aten.addmm)",
         "ptflops/aten_ops.py: addmm_flop", _V),
    rule(A, "MACs", "attention", {MACC: 1, BIAS: 1},
         "the projections (aten.addmm) only: the attention matmuls run in a fused scaled-dot-product kernel that "
         "ATEN_OPS_MAPPING has no entry for, counted 0 silently", "ptflops/aten_ops.py: ATEN_OPS_MAPPING", _V),
    rule(A, "MACs", PRODUCTS, {MACC: 1, ATTN: 1, BIAS: 1},
         "1 per multiply-accumulate of mm / bmm / addmm (plus addmm's bias adds); an einsum counts as its bmm",
         "ptflops/aten_ops.py: matmul_flop, bmm_flop, addmm_flop", _V, unless={"aten": ("baddbmm",)}),
    rule(A, "MACs", PRODUCTS + ("sdpa",), {},
         "0: aten.baddbmm and the scaled-dot-product kernels are not in ATEN_OPS_MAPPING, counted 0 silently",
         "ptflops/aten_ops.py: ATEN_OPS_MAPPING (mm, matmul, addmm, bmm, convolution)", _V),
    rule(A, "MACs", NO_ARITHMETIC_KINDS, {}, "0: only ops in ATEN_OPS_MAPPING are counted",
         "ptflops/aten_engine.py: FlopCounterMode.__torch_dispatch__ (ATEN_OPS_MAPPING lookup)", _V),
)
