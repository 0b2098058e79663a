"""Catalogued conventions of the reference document (its formulas in docs/document.md)."""
from ..terms import ATTN, BIAS, BIAS_PARAMS, IN, MACC, TIED, WEIGHTS
from .base import PARAMS_ALL, WEIGHTED, rule

CONVENTIONS = (
    rule("document", "flops", WEIGHTED, {MACC: 2, BIAS: 1}, "2 FLOPs per multiply-accumulate plus one per bias add",
         "docs/document.md: FLOPs_conv = [2*k*c_in*c_out + c_out]*H*W, FLOPs_fc = 2*n_in*n_out + n_out"),
    rule("document", "macc", WEIGHTED, {MACC: 1}, "1 per multiply-accumulate", "docs/document.md: macc formulas"),
    rule("document", "macc", ("attention", "matmul", "einsum", "sdpa"), {MACC: 1, ATTN: 1},
         "every dot product's multiply-accumulates, against a weight or between two activations",
         "docs/document.md: MACC defined generically as the multiply-accumulates of dot products"),
    rule("document", "flops", ("pool_max", "pool_avg", "pool_avg_adaptive", "pool_max_adaptive"), {IN: 1},
         "a pool costs its input elements", "docs/document.md: FLOPs_pool1 = 20*24*24"),
    rule("document", "params", PARAMS_ALL, {WEIGHTS: 1, BIAS_PARAMS: 1, TIED: -1},
         "weights plus biases, a tied weight once", "the document's param formulas (docs/document.md)"),
)
