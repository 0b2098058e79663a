"""Catalogued conventions of thop (Lyken17/pytorch-OpCounter), keyed by release.

Read from the released wheels: 0.1.1.post2209072238 (the pinned one) and 0.0.31.post2005241907 (2020, the
document's 2,307,720 for LeNet). What changed between them, per layer kind:
- conv: 0.0.31 thop/vision/basic_hooks.py `count_convNd` counts `y.nelement() * (in_channels // groups *
  kernel_ops + bias_ops)`, i.e. MACC + one add per output element when there is a bias; 0.1.1 `count_convNd`
  calls thop/vision/calc_func.py `calculate_conv2d_flops`, which takes `bias` but never uses it: MACC only.
- BatchNorm: 0.0.31 `count_bn` counts 2 ops per input element in eval, affine or not; 0.1.1
  `count_normalization` counts `calculate_norm` = 2 per element, doubled when affine (the default).
- LayerNorm, InstanceNorm, Softmax, PReLU have no rule in 0.0.31 thop/profile.py `register_hooks` (0 ops, and
  the adapter reports them unsupported); 0.1.1 has rules for all four.
- Linear, max/avg/adaptive pools, ReLU and params are counted alike by both.

Ranges compare release numbers only (conventions/catalogue/__init__.py `in_range`). thop's release numbers are
not chronological: 0.0.4.post2006032126 .. 0.0.5.post2110061705 (2020-21) still count the conv bias like 0.0.31,
but 0.0.5.post2206102148 (June 2022, built with 0.1.0.post2206102148) already has `calculate_conv2d_flops`. A
range bounded by release numbers cannot single that one build out, so it is explained by the pre-0.1 entries
here; the diff engine then finds the residual and falls back to its search, which still finds `1*MACC`.
"""
from ..terms import BIAS, MACC, OUT, WINDOW
from .base import PARAMS_ALL, rule, weights_plus_biases

NEW, OLD = ("0.1", ""), ("", "0.1")

# thop/profile.py register_hooks (0.1.1): the module classes it has a rule for, matched by exact type. The IR names
# activation modules in lower case.
REGISTRY = ("ZeroPad2d", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
            "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "InstanceNorm1d", "InstanceNorm2d",
            "InstanceNorm3d", "prelu", "Softmax", "relu", "relu6", "leakyrelu", "MaxPool1d", "MaxPool2d", "MaxPool3d",
            "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
            "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "Linear", "Dropout", "Upsample",
            "UpsamplingBilinear2d", "UpsamplingNearest2d", "RNNCell", "GRUCell", "LSTMCell", "RNN", "GRU", "LSTM",
            "Sequential", "PixelShuffle")
_MODULE_KINDS = tuple(k for k in PARAMS_ALL if k != "parameter")

CONVENTIONS = (
    *(rule("thop", metric, _MODULE_KINDS, {},
           "0: no rule for this module class (transformers' Conv1D, GELUActivation, an RMSNorm, nn.Embedding, "
           "nn.GELU, ...), so neither its ops nor its parameters are counted",
           "thop/profile.py: profile -> add_hooks (only `m_type in register_hooks` gets count hooks)", NEW,
           unless={"op": REGISTRY}) for metric in ("macs", "params")),
    rule("thop", "params", "parameter", {},
         "0 for the parameters of a module that never runs: parameters are counted by a forward hook",
         "thop/profile.py: profile -> add_hooks (m.register_forward_hook(count_parameters))",
         when={"executed": (False,)}),
    rule("thop", "macs", "conv", {MACC: 1}, "1 op per multiply-accumulate; conv bias adds not counted",
         "thop/vision/calc_func.py: calculate_conv2d_flops (via basic_hooks.count_convNd; `bias` unused)", NEW),
    rule("thop", "macs", "conv", {MACC: 1, BIAS: 1}, "1 op per multiply-accumulate plus the conv bias adds",
         "thop 0.0.31 thop/vision/basic_hooks.py: count_convNd (y.nelement() * (in_channels // groups * "
         "kernel_ops + bias_ops))", OLD),
    rule("thop", "macs", "linear", {MACC: 1}, "1 op per multiply-accumulate; bias adds not counted",
         "thop/vision/basic_hooks.py: count_linear (in_features * y.numel(); 0.1.1 via calc_func.calculate_linear)"),
    # ReLU/ReLU6 only: LeakyReLU is `count_relu`, x.numel() in 0.0.31 and 0 (calculate_relu_flops) in 0.1.1.
    rule("thop", "macs", ("pool_max", "pool_max_adaptive", "act"), {}, "counted as 0",
         "thop/profile.py: register_hooks maps MaxPool*/ReLU*/AdaptiveMaxPool* to zero_ops"),
    rule("thop", "macs", "pool_avg", {OUT: 1}, "1 op per output element",
         "thop/vision/basic_hooks.py: count_avgpool (kernel_ops = 1 per y.numel(); 0.1.1 via calculate_avgpool)"),
    rule("thop", "macs", "pool_avg_adaptive", {WINDOW: 1, OUT: 1}, "(kernel adds + 1 division) per output element",
         "thop/vision/basic_hooks.py: count_adap_avgpool ((prod(in / out) + 1) * y.numel(); 0.1.1 via "
         "calc_func.calculate_adaptive_avg)"),
    rule("thop", "macs", ("bn", "layer_norm"), {OUT: 4}, "4 ops per element (2, doubled when affine)",
         "thop/vision/basic_hooks.py: count_normalization (calculate_norm = 2*numel, x2 if affine)", NEW),
    rule("thop", "macs", "bn", {OUT: 2}, "2 ops per element in eval, affine or not",
         "thop 0.0.31 thop/vision/basic_hooks.py: count_bn (2 * x.numel() when not training)", OLD),
    rule("thop", "params", PARAMS_ALL, weights_plus_biases, "weights plus biases",
         "thop/vision/basic_hooks.py: count_parameters (numel of m.parameters(), set when the module runs)"),
)
