"""Catalogued conventions of Netscope (dgschwend/netscope src/analyzer.coffee)."""
from ..terms import BIAS_CH, MACC, OUT
from .base import rule

CONVENTIONS = (
    rule("netscope", "macc", "conv", {MACC: 2, OUT: -1, BIAS_CH: 1},
         "(2n-1) ops per output plus the bias added once per channel; labelled macc but FLOP-like",
         "netscope src/analyzer.coffee (a5f7aa4): convolution macc", ("a5f7aa4", "")),
)
