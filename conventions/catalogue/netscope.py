"""Catalogued conventions of Netscope (dgschwend/netscope), whose analyzer changed meaning under the same labels.

Versions (see reconcile/adapters/netscope.py): "51c947a" is the older analyzer (compiled page
assets/js/netscope.js at 51c947a), "a5f7aa4" the later one (src/analyzer.coffee at a5f7aa4, Analyzer.analyze).
Netscope reads a prototxt only, one sample; both rule sets are recorded by one run.
"""
from ..terms import BIAS_CH, BIAS_PARAMS, IN, MACC, OUT, WEIGHTS, WINDOW
from .base import rule

OLDER, LATER = ("51c947a", ""), ("a5f7aa4", "")
_ANALYZER = "netscope src/analyzer.coffee (a5f7aa4): Analyzer.analyze"
_PAGE = "netscope assets/js/netscope.js (51c947a): analyzer"

CONVENTIONS = (
    rule("netscope", "macc", "conv", {MACC: 1},
         "a true MACC count: kw*kh*Hout*Wout*Cin*Cout, no bias (groups ignored)", f"{_PAGE} convolution", OLDER),
    rule("netscope", "param", "conv", {WEIGHTS: 1}, "weights only: bias parameters not counted",
         f"{_PAGE} convolution", OLDER),
    rule("netscope", "macc", "conv", {MACC: 2, OUT: -1, BIAS_CH: 1},
         "(2n-1) ops per output plus the bias added once per channel (Cout, not Cout*H*W): labelled macc but "
         "FLOP-like", f"{_ANALYZER} convolution", LATER),
    rule("netscope", "param", "conv", {WEIGHTS: 1, BIAS_PARAMS: 1}, "weights plus biases",
         f"{_ANALYZER} convolution", LATER),
    rule("netscope", "macc", "linear", {MACC: 1}, "K*N multiply-accumulates, no bias adds",
         f"{_PAGE} innerproduct", OLDER),
    rule("netscope", "param", "linear", {WEIGHTS: 1}, "weights only: bias parameters not counted",
         f"{_PAGE} innerproduct", OLDER),
    rule("netscope", "macc", "linear", {MACC: 1}, "K*N multiply-accumulates, no bias adds",
         f"{_ANALYZER} innerproduct", LATER),
    rule("netscope", "param", "linear", {WEIGHTS: 1, BIAS_PARAMS: 1}, "weights plus biases",
         f"{_ANALYZER} innerproduct", LATER),
)

# Rules shared by both versions (pooling, activations, normalisation, softmax, eltwise).
for _versions, _where in ((OLDER, _PAGE), (LATER, _ANALYZER)):
    CONVENTIONS += (
        rule("netscope", "comp", "pool_max", {WINDOW: 1}, "kernel_area x output elements (comparisons)",
             f"{_where} pooling MAX", _versions),
        rule("netscope", "add", "pool_avg", {WINDOW: 1}, "kernel_area x output elements (adds)",
             f"{_where} pooling AVE", _versions),
        rule("netscope", "comp", ("pool_max_adaptive",), {IN: 1}, "global pooling: input elements",
             f"{_where} pooling global", _versions),
        rule("netscope", "add", ("pool_avg_adaptive",), {IN: 1}, "global pooling: input elements",
             f"{_where} pooling global", _versions),
        rule("netscope", "comp", "act", {OUT: 1}, "1 comparison per element", f"{_where} relu", _versions),
        rule("netscope", "add", ("bn", "add"), {OUT: 1}, "1 add per element", f"{_where} batchnorm/eltwise",
             _versions),
        rule("netscope", "div", "bn", {OUT: 1}, "1 division per element", f"{_where} batchnorm", _versions),
        rule("netscope", "exp", "softmax", {OUT: 1}, "1 exp per element", f"{_where} softmax", _versions),
        rule("netscope", "param", ("pool_max", "pool_avg", "act", "bn", "add", "softmax"), {},
             "no parameters", f"{_where}", _versions),
    )
