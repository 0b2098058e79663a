"""calflops (0.3.2): per-module FLOPs, MACs and params, a fork of DeepSpeed's flops profiler.

Totals come from calflops/flops_counter.py `calculate_flops(model, input_shape, print_results=False,
output_as_string=False)`: `CalFlopsPipline.start_flops_calculate`, one forward (no warm-up), `get_total_flops` /
`get_total_macs` / `get_total_params`, `end_flops_calculate`. Per-layer numbers come from the same pipeline steps
on a fresh copy of the model (see `_patch_profilers`). The per-op rules are calflops/pytorch_ops.py
`_linear_flops_compute` (2*MACs, no bias adds), `_conv_flops_compute` (2*MACs + bias adds), `_pool_flops_compute`
and the activation rules (input elements, 0 MACs), `_batch_norm_flops_compute`, `_layer_norm_flops_compute`.
Unlike DeepSpeed 0.19.8 it patches no F.scaled_dot_product_attention, and its torch.bmm patch is commented out
(`_patch_tensor_methods`), so attention's QK^T and AV are missed whichever path nn.MultiheadAttention takes.

calflops/__init__.py imports flops_counter_hf, which does `from transformers import AutoTokenizer` although
calflops does not declare transformers: constraints.txt pins transformers for it.
"""
from __future__ import annotations

from typing import Optional

from . import layer_kinds
from ._patch_profilers import breakdown, profiler_records
from ._torch_common import ir_of
from ..records import Emitter, Record

TOOL = "calflops"
FRAMEWORK = "torch"
WORKER = "torch"
DISTRIBUTION = "calflops"
METRICS = ("FLOPs", "MACs", "Params")  # print_model_pipline: "fwd FLOPs", "fwd MACs", "Total Training Params"


def version() -> str:
    from . import distribution_version

    return distribution_version(DISTRIBUTION)


def unavailable() -> Optional[str]:
    from . import missing

    reason = missing(DISTRIBUTION, "calflops")
    if reason is None and missing("transformers", "transformers"):
        return ("calflops is installed but imports transformers, which it does not declare and is not installed "
                "(calflops/flops_counter_hf.py: from transformers import AutoTokenizer)")
    return reason


def count(spec, emit: Emitter) -> list[Record]:
    from calflops import calculate_flops
    from calflops import calculate_pipline as pipeline

    from ..models import example_input, torch_module

    kinds = layer_kinds(spec)
    ir = ir_of(spec)
    first = torch_module(spec)
    given = example_input(spec, first, TOOL)
    # the input as a positional argument: given `input_shape`, calculate_flops builds a float tensor and refuses
    # transformers models without a tokenizer (flops_counter.py: "the model is must not transformer model ...")
    flops, macs, params = calculate_flops(first, args=[given], print_results=False, output_as_string=False)
    model = torch_module(spec).eval()  # calculate_flops calls model.eval()
    calc = pipeline.CalFlopsPipline(model, include_backPropagation=False, compute_bp_factor=2.0)
    profile = breakdown(model, (example_input(spec, model, TOOL),), ir, pipeline, calc.start_flops_calculate,
                        calc.end_flops_calculate)
    return profiler_records(emit, profile, ir, kinds, METRICS, "calflops", pipeline,
                            "calflops/pytorch_ops.py _patch_functionals; its torch.bmm patch is commented out in "
                            "_patch_tensor_methods", (flops, macs, params),
                            "trainable parameters (CalFlopsPipline.get_total_params)")
