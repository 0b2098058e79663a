"""Catalogued conventions of TensorFlow profiler: per-op @ops.RegisterStatistics(op, "flops") functions of TF 2.21."""
from ..terms import BIAS, MACC, WINDOW
from .base import PARAMS_ALL, WEIGHTED, rule, weights_plus_biases

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
)
