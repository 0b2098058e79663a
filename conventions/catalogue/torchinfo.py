"""Catalogued conventions of torchinfo (TylerYep/torchinfo), metrics `Mult-Adds`, `Param #`, `Total params`.

torchinfo/layer_info.py `LayerInfo.calculate_macs` multiplies a module's parameters by output size: it never looks
at the input, so a Linear on a 3-D input is counted per batch element (catalogued as its own entry: at batch 1 it is
the layer's parameters, WEIGHTS + BIAS_PARAMS). Verified on 1.8.0; bounds are its minor series.
"""
from ..terms import BIAS, BIAS_PARAMS, MACC, WEIGHTS
from .base import PARAMS_ALL, rule, weights_plus_biases

T, SRC, _V = "torchinfo", "torchinfo/layer_info.py", ("1.8", "1.9")

CONVENTIONS = (
    rule(T, "Mult-Adds", "conv", {MACC: 1, BIAS: 1},
         "(weight + bias parameters) x N x output positions: 1 per multiply-accumulate plus the bias adds",
         f"{SRC}: LayerInfo.calculate_macs ('Conv' in class_name: cur_params * prod(output_size[:1] + "
         "output_size[2:]))", _V),
    rule(T, "Mult-Adds", "linear", {MACC: 1, BIAS: 1},
         "output_size[0] x (weight + bias parameters): MACC plus bias adds on a 2-D input, but only batch x "
         "parameters on a 3-D input (per batch element, not per token)",
         f"{SRC}: LayerInfo.calculate_macs (self.output_size[0] * cur_params)", _V),
    rule(T, "Mult-Adds", "linear", {WEIGHTS: 1, BIAS_PARAMS: 1},
         "on a 3-D input at batch 1: output_size[0] (the batch) x (weight + bias parameters), i.e. per batch "
         "element, not per token: the tokens' multiply-accumulates are missed",
         f"{SRC}: LayerInfo.calculate_macs (self.output_size[0] * cur_params)", _V),
    rule(T, "Mult-Adds", ("bn", "layer_norm", "norm"), {WEIGHTS: 1, BIAS_PARAMS: 1},
         "output_size[0] x the affine parameters (batch 1: just the parameter count)",
         f"{SRC}: LayerInfo.calculate_macs (self.output_size[0] * cur_params)", _V),
    rule(T, "Mult-Adds", ("act", "pool_max", "pool_avg", "pool_max_adaptive", "pool_avg_adaptive"), {},
         "0: no parameters, so nothing to multiply by the output size", f"{SRC}: LayerInfo.calculate_macs", _V),
    rule(T, "Param #", PARAMS_ALL, weights_plus_biases, "weights plus biases (a non-leaf: leftover_params())",
         f"{SRC}: LayerInfo.calculate_num_params, leftover_params"),
)
