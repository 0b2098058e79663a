"""Rules shared by DeepSpeed's flops profiler and calflops, its fork: both patch torch.nn.functional and count
each call with a `_*_flops_compute` function returning (flops, macs). The tool modules add what differs
(attention, the params source)."""
from ..terms import BIAS, IN, MACC, OUT
from .base import rule

POOLS = ("pool_max", "pool_avg", "pool_max_adaptive", "pool_avg_adaptive")


def shared_rules(tool: str, src: str, versions: tuple[str, str], flops: str, macs: str) -> tuple:
    return (
        rule(tool, flops, "conv", {MACC: 2, BIAS: 1}, "2 FLOPs per multiply-accumulate plus the bias adds, as the "
             "document", f"{src}: _conv_flops_compute (2 * overall_conv_macs + out_channels * "
             "active_elements_count)", versions),
        rule(tool, flops, ("linear", "matmul"), {MACC: 2}, "2 FLOPs per multiply-accumulate; bias adds not counted",
             f"{src}: _linear_flops_compute (2 * input.numel() * out_features), _matmul_flops_compute", versions),
        rule(tool, flops, POOLS, {IN: 1}, "a pool costs its input elements",
             f"{src}: _pool_flops_compute (input.numel())", versions),
        rule(tool, flops, ("act", "softmax"), {IN: 1}, "1 per input element",
             f"{src}: _relu_flops_compute, _gelu_flops_compute, _softmax_flops_compute (input.numel())", versions),
        rule(tool, flops, "act", {}, "0 for nn.ReLU6: its forward calls F.hardtanh (torch/nn/modules/activation.py "
             "Hardtanh.forward), which is not patched, so the relu6 rule never fires",
             f"{src}: _patch_functionals (patches F.relu6, not F.hardtanh)", versions),
        rule(tool, flops, "bn", {IN: 2}, "2 per element (eval, affine)",
             f"{src}: _batch_norm_flops_compute (numel * (2 if has_affine else 1) when not training)", versions),
        rule(tool, flops, "layer_norm", {IN: 5}, "5 per element when affine",
             f"{src}: _layer_norm_flops_compute (numel * (5 if has_affine else 4))", versions),
        rule(tool, flops, "norm", {IN: 5}, "F.group_norm: 5 per element when affine",
             f"{src}: _group_norm_flops_compute (numel * (5 if has_affine else 4))", versions,
             when={"aten": ("native_group_norm",), "affine": (True,)}),
        rule(tool, flops, "norm", {IN: 4}, "F.group_norm: 4 per element without an affine weight",
             f"{src}: _group_norm_flops_compute (numel * (5 if has_affine else 4))", versions,
             when={"aten": ("native_group_norm",), "affine": (False,)}),
        rule(tool, macs, "norm", {}, "0 MACs: the group-norm rule returns (flops, 0)",
             f"{src}: _group_norm_flops_compute", versions, when={"aten": ("native_group_norm",)}),
        rule(tool, flops, ("add", "mul"), {OUT: 1}, "1 per output element (torch.add / Tensor.add / mul only; the "
             "`+` operator is not patched)", f"{src}: _elementwise_flops_compute, _patch_tensor_methods", versions),
        rule(tool, macs, ("conv", "linear", "matmul"), {MACC: 1}, "1 per multiply-accumulate",
             f"{src}: _conv_flops_compute, _linear_flops_compute, _matmul_flops_compute (macs)", versions),
        rule(tool, macs, POOLS + ("act", "softmax", "bn", "layer_norm", "add", "mul"), {},
             "0 MACs: these rules return (flops, 0)",
             f"{src}: _pool/_relu/_gelu/_batch_norm/_layer_norm_flops_compute", versions),
    )
