"""DeepSpeed (0.19.8) flops profiler: per-module flops, MACs and params from patched torch functionals.

Totals come from the public entry point deepspeed/profiling/flops_profiler/profiler.py `get_model_profile(model,
input_shape, print_profile=False, as_string=False)`: one warm-up forward, then `FlopsProfiler.start_profile`,
one forward, `get_total_flops` / `get_total_macs` / `get_total_params`, `end_profile`. Per-layer numbers come
from the same `FlopsProfiler` steps on a fresh copy of the model (see `_patch_profilers`). The per-op rules are in
the same file: `_linear_flops_compute` (2*MACs, bias adds not counted), `_conv_flops_compute` (2*MACs + bias
adds), `_pool_flops_compute` and the activation rules (input elements, 0 MACs), `_batch_norm_flops_compute`
(2 per element, affine, eval), `_layer_norm_flops_compute` (5 per element, affine), `_attn_flops_compute`
(F.scaled_dot_product_attention: QK^T and AV), `_softmax_flops_compute`, `_elementwise_flops_compute`.

Installed with DS_BUILD_OPS=0 (no compiled ops: the profiler is pure Python); it picks its accelerator at import
time, so DS_ACCELERATOR=cpu is set before importing it (this job's process only).
"""
from __future__ import annotations

import os
from typing import Optional

from . import layer_kinds
from ._patch_profilers import breakdown, profiler_records
from ._torch_common import ir_of
from ..records import Emitter, Record

TOOL = "deepspeed"
FRAMEWORK = "torch"
WORKER = "torch"
DISTRIBUTION = "deepspeed"
METRICS = ("flops", "MACs", "params")  # print_model_profile: "fwd flops per GPU", "fwd MACs per GPU", "params"
SOURCE = "deepspeed/profiling/flops_profiler/profiler.py"


def version() -> str:
    from . import distribution_version

    return distribution_version(DISTRIBUTION)


def unavailable() -> Optional[str]:
    from . import missing

    return missing(DISTRIBUTION, "deepspeed")


def profiler_module():
    os.environ.setdefault("DS_ACCELERATOR", "cpu")  # deepspeed/accelerator/real_accelerator.py get_accelerator
    from deepspeed.profiling.flops_profiler import profiler

    return profiler


def totals(spec) -> tuple[int, int, int]:
    from ..models import example_input, torch_module

    profiler = profiler_module()
    model = torch_module(spec)
    # token ids go in as args (get_model_profile would build a float tensor from input_shape)
    feed = dict(args=[example_input(spec, model, TOOL)]) if spec.token_model else \
        dict(input_shape=tuple(spec.input_shape))
    return profiler.get_model_profile(model, print_profile=False, as_string=False, **feed)


def count(spec, emit: Emitter) -> list[Record]:
    from ..models import example_input, torch_module

    profiler = profiler_module()
    kinds = layer_kinds(spec)
    ir = ir_of(spec)
    flops, macs, params = totals(spec)
    model = torch_module(spec)
    inputs = (example_input(spec, model, TOOL),)
    model(*inputs)  # get_model_profile's warm-up forward
    prof = profiler.FlopsProfiler(model)
    profile = breakdown(model, inputs, ir, profiler, prof.start_profile, prof.end_profile)
    return profiler_records(emit, profile, ir, kinds, METRICS, "DeepSpeed", profiler, f"{SOURCE} _patch_functionals",
                            (flops, macs, params), "FlopsProfiler.get_total_params (__params__ of the model)")
