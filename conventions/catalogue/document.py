"""Catalogued conventions of the reference document (seed/000)."""
from ..terms import BIAS, IN, MACC
from .base import PARAMS_ALL, WEIGHTED, rule, weights_plus_biases

CONVENTIONS = (
    rule("document", "flops", WEIGHTED, {MACC: 2, BIAS: 1}, "2 FLOPs per multiply-accumulate plus one per bias add",
         "seed/000: FLOPs_conv = [2*k*c_in*c_out + c_out]*H*W, FLOPs_fc = 2*n_in*n_out + n_out"),
    rule("document", "macc", WEIGHTED, {MACC: 1}, "1 per multiply-accumulate", "seed/000: macc formulas"),
    rule("document", "flops", ("pool_max", "pool_avg", "pool_avg_adaptive", "pool_max_adaptive"), {IN: 1},
         "a pool costs its input elements", "seed/000: FLOPs_pool1 = 20*24*24"),
    rule("document", "params", PARAMS_ALL, weights_plus_biases, "weights plus biases", "seed/000: param formulas"),
)
