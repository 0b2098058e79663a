"""Catalogued conventions of TensorFlow profiler: per-op @ops.RegisterStatistics(op, "flops") functions of TF 2.21."""
from ..terms import BIAS, IN, MACC, OUT, ROWS, SOFTMAX_TERM, WEIGHTS, WINDOW
from .base import PARAMS_ALL, WEIGHTED, rule, weights_plus_biases

_REG = "tensorflow/python/profiler/internal/flops_registry.py"

CONVENTIONS = (
    rule("tf_profiler", "*/Conv2D", "conv", {MACC: 2}, "2 FLOPs per multiply-accumulate",
         "tensorflow/python/ops/nn_ops.py: _calc_conv_flops (2 * kernel * output elements)"),
    rule("tf_profiler", "*/BiasAdd", WEIGHTED, {BIAS: 1}, "1 FLOP per bias add (its own op)",
         "tensorflow/python/ops/nn_ops.py: _calc_bias_add_flops"),
    rule("tf_profiler", "*/MaxPool", "pool_max", {WINDOW: 1}, "kernel_area x output elements",
         "tensorflow/python/profiler/internal/flops_registry.py: _max_pool_flops -> _pool_flops"),
    rule("tf_profiler", "*/AvgPool", "pool_avg", {WINDOW: 1}, "kernel_area x output elements",
         "tensorflow/python/profiler/internal/flops_registry.py: _avg_pool_flops -> _pool_flops"),
    rule("tf_profiler", "*/MatMul", "linear", {MACC: 2}, "2 FLOPs per multiply-accumulate",
         "tensorflow/python/profiler/internal/flops_registry.py: _calc_mat_mul_flops (2 * k * output elements)"),
    rule("tf_profiler", "trainable_params", PARAMS_ALL, weights_plus_biases, "weights plus biases",
         "keras Model.count_params"),
    # Keras 3 layers that decompose into TF primitives (inference BatchNormalization, LayerNormalization, attention).
    rule("tf_profiler", "*/DepthwiseConv2dNative", "conv", {MACC: 2}, "2 FLOPs per multiply-accumulate",
         "tensorflow/python/ops/nn_ops.py: _calc_depthwise_conv_flops"),
    rule("tf_profiler", "*/Softmax", ("attention", "softmax"), {SOFTMAX_TERM: 5}, "5 FLOPs per element (2 to shift "
         "the logits, 1 exp, 2 to normalise)", f"{_REG}: _softmax_flops (ops_per_element=5)"),
    rule("tf_profiler", "*/Mean", ("pool_avg", "pool_avg_adaptive"), {IN: 1},
         "1 add per input element, 1 division per output: = IN",
         f"{_REG}: _mean_flops (_reduction_op_flops, reduce_flops=1, finalize_flops=1)"),
    rule("tf_profiler", "*/AddV2", ("add", "bn", "attention"), {OUT: 1}, "1 FLOP per element",
         f"{_REG}: _add_flops (binary per-element op)"),
    rule("tf_profiler", "*/Mul", ("bn", "act", "attention", "layer_norm"), {OUT: 1}, "1 FLOP per element",
         f"{_REG}: _mul_flops (binary per-element op)"),
    *(rule("tf_profiler", f"*/{op}", "bn", {WEIGHTS: 1},
           "1 FLOP per channel: Keras folds the moving statistics into a per-channel scale and shift first",
           f"{_REG}: {fn} on the (C,) vectors") for op, fn in (("AddV2", "_add_flops"), ("Mul", "_mul_flops"),
                                                               ("Sub", "_sub_flops"))),
    rule("tf_profiler", "*/Rsqrt", "bn", {WEIGHTS: 2}, "2 FLOPs per channel (rsqrt of the variance vector)",
         f"{_REG}: _rsqrt_flops (ops_per_element=2)"),
    rule("tf_profiler", "*/Rsqrt", "layer_norm", {ROWS: 2}, "2 FLOPs per normalised row",
         f"{_REG}: _rsqrt_flops (ops_per_element=2)"),
    rule("tf_profiler", "*/SquaredDifference", "layer_norm", {OUT: 2}, "2 FLOPs per element",
         f"{_REG}: _squared_difference_flops (ops_per_element=2)"),
)
