"""Catalogued conventions of thop (Lyken17/pytorch-OpCounter)."""
from ..terms import BIAS, MACC, OUT, WINDOW
from .base import PARAMS_ALL, rule, weights_plus_biases

CONVENTIONS = (
    rule("thop", "macs", "conv", {MACC: 1}, "1 op per multiply-accumulate; conv bias adds not counted",
         "thop/vision/calc_func.py: calculate_conv2d_flops (via basic_hooks.count_convNd)", ("0.1", "")),
    rule("thop", "macs", "conv", {MACC: 1, BIAS: 1}, "1 op per multiply-accumulate plus the conv bias adds",
         "thop/count_hooks.py: count_convNd (kernel_ops + bias_ops per output element)", ("", "0.1")),
    rule("thop", "macs", "linear", {MACC: 1}, "1 op per multiply-accumulate; bias adds not counted",
         "thop/vision/basic_hooks.py: count_linear (in_features * y.numel())"),
    rule("thop", "macs", ("pool_max", "pool_max_adaptive", "act", "softmax"), {}, "counted as 0",
         "thop/profile.py: register_hooks maps MaxPool*/ReLU*/AdaptiveMaxPool* to zero_ops"),
    rule("thop", "macs", "pool_avg", {OUT: 1}, "1 op per output element",
         "thop/vision/basic_hooks.py: count_avgpool (calculate_avgpool(y.numel()))"),
    rule("thop", "macs", "pool_avg_adaptive", {WINDOW: 1, OUT: 1}, "(kernel adds + 1 division) per output element",
         "thop/vision/basic_hooks.py: count_adap_avgpool -> calc_func.calculate_adaptive_avg"),
    rule("thop", "macs", ("bn", "layer_norm"), {OUT: 4}, "4 ops per element (2, doubled when affine)",
         "thop/vision/basic_hooks.py: count_normalization (calculate_norm = 2*numel, x2 if affine)"),
    rule("thop", "params", PARAMS_ALL, weights_plus_biases, "weights plus biases",
         "thop/vision/basic_hooks.py: count_parameters"),
)
