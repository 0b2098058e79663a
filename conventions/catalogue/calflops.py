"""Catalogued conventions of calflops (MrYxJ/calculate-flops.pytorch), metrics `FLOPs`, `MACs`, `Params`.

A fork of DeepSpeed's flops profiler: every rule is a `_*_flops_compute` function of calflops/pytorch_ops.py,
returning (flops, macs) for one patched functional call, summed per module by calflops/calculate_pipline.py
`CalFlopsPipline.start_flops_calculate`. It patches no F.scaled_dot_product_attention, so attention's QK^T and AV
are not counted. Verified on 0.3.2; bounds are its minor series.
"""
from ..terms import ATTN, BIAS_CH, IN, MACC
from .base import PARAMS_ALL, rule, weights_plus_biases
from .flops_profiler_family import shared_rules

T, SRC, _V = "calflops", "calflops/pytorch_ops.py", ("0.3", "0.4")
# Entry points it wraps (_patch_functionals, _patch_tensor_methods). `a @ b` reaches the wrapped torch.matmul:
# torch/_tensor.py Tensor.__matmul__ returns torch.matmul(self, other), looked up at call time.
MATMUL_APIS = ("torch.matmul", "Tensor.matmul", "Tensor.__matmul__", "Tensor.__rmatmul__")
PATCHED_ACTS = ("F.relu", "F.prelu", "F.elu", "F.leaky_relu", "F.relu6", "F.silu", "F.gelu")
# Python operators and methods it does not wrap: `x + y`, `x * y`, `x / y`, x.softmax(), torch.softmax
UNPATCHED_ELEMENTWISE = ("Tensor.__add__", "Tensor.__radd__", "Tensor.__iadd__", "Tensor.__sub__",
                         "Tensor.__rsub__", "Tensor.__isub__", "Tensor.__mul__", "Tensor.__rmul__", "Tensor.__imul__",
                         "Tensor.__truediv__", "Tensor.__rtruediv__", "Tensor.__itruediv__", "Tensor.div",
                         "torch.div", "Tensor.sub", "torch.sub", "Tensor.softmax", "torch.softmax", "torch.sigmoid",
                         "Tensor.sigmoid", "torch.tanh", "Tensor.tanh", "torch.pow", "Tensor.pow", "Tensor.__pow__")

CONVENTIONS = (
    rule(T, "FLOPs", "matmul", {MACC: 2, ATTN: 2}, "2 per multiply-accumulate of a torch.matmul / `@` call",
         f"{SRC}: _matmul_flops_compute (2 * prod(input.shape) * other.shape[-1])", _V, when={"api": MATMUL_APIS}),
    rule(T, "MACs", "matmul", {MACC: 1, ATTN: 1}, "1 per multiply-accumulate of a torch.matmul / `@` call",
         f"{SRC}: _matmul_flops_compute (macs)", _V, when={"api": MATMUL_APIS}),
    *(rule(T, metric, ("matmul", "sdpa"), {},
           "0: torch.bmm / torch.mm are not wrapped (commented out in _patch_tensor_methods) and neither is "
           "F.scaled_dot_product_attention: these products are missed silently", f"{SRC}: _patch_tensor_methods",
           _V, unless={"api": MATMUL_APIS}) for metric in ("FLOPs", "MACs")),
    rule(T, "FLOPs", "linear", {MACC: 2, BIAS_CH: 1},
         "a module calling torch.addmm(bias, x, W) (transformers' Conv1D): 2 per multiply-accumulate plus the bias "
         "once per output channel (the bias tensor's size), not once per output element",
         f"{SRC}: _addmm_flops_compute (2 * macs + _prod(input.shape))", _V, when={"api": ("torch.addmm",)}),
    rule(T, "FLOPs", "einsum", {MACC: 2, ATTN: 2},
         "numpy's einsum_path 'Optimized FLOP count' (2 per multiply-accumulate) parsed from its printout, which "
         "has 4 significant digits ('1.850e+04')", f"{SRC}: _einsum_flops_compute (np.einsum_path(...)[1])", _V,
         significant_digits=4),
    rule(T, "MACs", "einsum", {}, "0 MACs: the einsum rule returns (flops, 0)", f"{SRC}: _einsum_flops_compute",
         _V),
    rule(T, "FLOPs", "act", {IN: 1}, "1 per input element of a wrapped activation function",
         f"{SRC}: _relu_flops_compute, _gelu_flops_compute, _silu_flops_compute (input.numel())", _V,
         when={"api": PATCHED_ACTS}),
    rule(T, "FLOPs", ("act", "add", "mul", "softmax"), {},
         "0: computed by Python operators or torch functions it does not wrap (`x + y`, `x * y`, tanh, "
         "F.hardtanh of nn.ReLU6, Tensor.softmax)", f"{SRC}: _patch_functionals, _patch_tensor_methods", _V,
         when={"api": UNPATCHED_ELEMENTWISE + ("F.hardtanh", "torch.hardtanh")}),
    rule(T, "FLOPs", "layer_norm", {IN: 4}, "4 per element without an affine weight",
         f"{SRC}: _layer_norm_flops_compute (numel * (5 if has_affine else 4))", _V, when={"affine": (False,)}),
    *(rule(T, metric, ("reduce_mean", "elementwise", "norm", "embedding"), {},
           "0: torch.mean, pow, rsqrt, exp, ... are not wrapped; F.embedding is wrapped but returns (0, 0)",
           f"{SRC}: _patch_functionals, _embedding_flops_compute", _V) for metric in ("FLOPs", "MACs")),
) + shared_rules(T, SRC, _V, flops="FLOPs", macs="MACs") + (
    rule(T, "FLOPs", "attention", {MACC: 2},
         "only the projections (F.linear, 2 per MACC, no bias adds): QK^T and AV run in "
         "F.scaled_dot_product_attention, which calflops does not patch", f"{SRC}: _patch_functionals", _V),
    rule(T, "MACs", "attention", {MACC: 1}, "1 per multiply-accumulate of the projections only",
         f"{SRC}: _linear_flops_compute (macs)", _V),
    rule(T, "Params", PARAMS_ALL, weights_plus_biases, "trainable weights plus biases of the module",
         "calflops/calculate_pipline.py: CalFlopsPipline.reset_flops_calculate (__params__)"),
)
