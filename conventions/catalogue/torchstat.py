"""Catalogued conventions of torchstat 0.0.7 (Swall0w/torchstat): always batch 1 (out.size()[1:])."""
from ..terms import BIAS, IN, MACC, OUT, WINDOW
from .base import PARAMS_ALL, rule, weights_plus_biases

CONVENTIONS = (
    rule("torchstat", "MAdd", "conv", {MACC: 2, OUT: -1, BIAS: 1},
         "(2k-1) ops per output (k multiplies, k-1 adds) plus the bias add; labelled MAdd",
         "torchstat/compute_madd.py: compute_Conv2d_madd", per_sample=True),
    rule("torchstat", "MAdd", "linear", {MACC: 2, OUT: -1}, "(2k-1) ops per output; bias adds not counted",
         "torchstat/compute_madd.py: compute_Linear_madd", per_sample=True),
    rule("torchstat", "MAdd", "pool_max", {WINDOW: 1, OUT: -1}, "(k-1) comparisons per output",
         "torchstat/compute_madd.py: compute_MaxPool2d_madd", per_sample=True),
    rule("torchstat", "MAdd", "pool_avg", {WINDOW: 1}, "(k-1) adds + 1 division per output",
         "torchstat/compute_madd.py: compute_AvgPool2d_madd", per_sample=True),
    rule("torchstat", "MAdd", "act", {IN: 1}, "1 op per element", "torchstat/compute_madd.py: compute_ReLU_madd",
         per_sample=True),
    rule("torchstat", "MAdd", "bn", {IN: 4}, "4 ops per element (sub mean, div std, mul, add)",
         "torchstat/compute_madd.py: compute_BatchNorm2d_madd", per_sample=True),
    rule("torchstat", "Flops", "conv", {MACC: 1, BIAS: 1},
         "1 per multiply-accumulate plus bias adds: a MACC count labelled 'Flops' (its MAdd/Flops labels are "
         "swapped relative to their meaning)", "torchstat/compute_flops.py: compute_Conv2d_flops", per_sample=True),
    rule("torchstat", "Flops", "linear", {MACC: 1},
         "1 per multiply-accumulate, no bias adds: a MACC count labelled 'Flops'",
         "torchstat/compute_flops.py: compute_Linear_flops", per_sample=True),
    rule("torchstat", "Flops", ("pool_max", "pool_avg"), {IN: 1}, "a pool costs its input elements",
         "torchstat/compute_flops.py: compute_Pool2d_flops (np.prod(inp.shape))", per_sample=True),
    rule("torchstat", "Flops", "act", {IN: 1}, "1 op per element", "torchstat/compute_flops.py: compute_ReLU_flops",
         per_sample=True),
    rule("torchstat", "Flops", "bn", {IN: 2}, "2 ops per element when affine",
         "torchstat/compute_flops.py: compute_BatchNorm2d_flops", per_sample=True),
    rule("torchstat", "params", PARAMS_ALL, weights_plus_biases, "weights plus biases",
         "torchstat/model_hook.py: ModelHook._register_forward_hook (parameter_quantity)"),
)
