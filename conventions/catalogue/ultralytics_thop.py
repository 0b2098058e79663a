"""Catalogued conventions of ultralytics-thop (ultralytics/thop, the maintained fork of thop), metric `macs`.

Rules are looked up along each module type's MRO (thop/profile.py `_resolve_rule`) in `register_hooks`; the
counting functions are in thop/vision/basic_hooks.py and thop/vision/calc_func.py. Verified on 2.2.3; bounds are
its minor series.
"""
from ..terms import ATTN, IN, MACC, OUT, ROWS, SOFTMAX_TERM, WINDOW
from .base import PARAMS_ALL, rule, weights_plus_biases

T, HOOKS, _V = "ultralytics_thop", "thop/vision/basic_hooks.py", ("2.2", "2.3")

CONVENTIONS = (
    rule(T, "macs", "conv", {MACC: 1}, "1 per multiply-accumulate; bias adds not counted",
         f"{HOOKS}: count_convNd -> calc_func.py calculate_conv2d_flops (out volume * c_in/groups * kernel)", _V),
    rule(T, "macs", ("linear", "matmul"), {MACC: 1}, "1 per multiply-accumulate (in_features x output elements: per "
         "token); bias adds not counted", f"{HOOKS}: count_linear -> calc_func.py calculate_linear", _V),
    rule(T, "macs", ("bn", "layer_norm"), {IN: 4}, "2 per element, doubled when affine",
         f"{HOOKS}: count_normalization (calc_func.py calculate_norm = 2 * numel, x2 if affine/elementwise_affine)",
         _V),
    rule(T, "macs", ("pool_max", "pool_max_adaptive", "act"), {},
         "0: ReLU and max pools map to zero_ops; modules with no rule (GELU) count 0 too",
         "thop/profile.py: register_hooks (zero_ops), _resolve_rule returns None for GELU", _V),
    rule(T, "macs", ("pool_avg", "pool_avg_adaptive"), {WINDOW: 1, OUT: 1},
         "one add per pooled input (the exact window sizes) plus one division per output",
         f"{HOOKS}: count_avgpool, count_adap_avgpool", _V),
    rule(T, "macs", "attention", {MACC: 1, ATTN: 1, SOFTMAX_TERM: 3, ROWS: -1},
         "projections + QK^T and AV at 1 per multiply-accumulate + softmax at (3L-1) per row of L "
         "(L exps, L-1 adds, L divisions)",
         f"{HOOKS}: count_multihead_attention (projections + attention + calc_func.py calculate_softmax)", _V),
    rule(T, "params", PARAMS_ALL, weights_plus_biases, "weights plus biases of the module subtree",
         "thop/profile.py: dfs_count (calc_func.py calculate_parameters(m.parameters()))"),
)
