"""Catalogued conventions of torchsummary 1.5.1."""
from .base import PARAMS_ALL, rule, weights_plus_biases

CONVENTIONS = (
    rule("torchsummary", "Param #", PARAMS_ALL, weights_plus_biases, "weights plus biases",
         "torchsummary/torchsummary.py: summary.register_hook.hook (weight.size() + bias.size())"),
)
