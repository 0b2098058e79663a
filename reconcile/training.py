"""Training compute of one model: the measured forward + backward (frontends/torch_training.py), run in a job
process, and the counters that report training FLOPs, each run in its own job and explained with basis terms.

`measure(spec, frozen, recompute)` -> conventions.training.TrainingTrace. The model's code (factory, forward,
backward) runs only in a forked job process with the timeout (runner.fork_call), never here.

Counters that report training FLOPs (TRAINING_COUNTERS), each read in its installed source:
  torch_flop_counter  torch.utils.flop_counter.FlopCounterMode(model) around `loss_fn(forward_fn()).backward()`:
                      what Lightning's `measure_flops(model, forward_fn, loss_fn)` returns
                      (src/lightning/fabric/utilities/throughput.py; lightning is not pinned here, so its
                      convention is reproduced with the pinned torch). Counts backward aten ops with their own
                      formulas. (torchtitan's MFU does not count: it uses its formula, conventions/training.py
                      MFU_CONVENTIONS.)
  calflops            calflops/flops_counter.py calculate_flops(..., include_backPropagation=True): runs the
                      forward only and returns `flops * (1 + compute_bp_factor)`, compute_bp_factor 2.0: 3 x its
                      forward count, whatever the model freezes or needs.
  deepspeed           deepspeed/profiling/flops_profiler/profiler.py: its patched functionals count only Python-
                      level forward calls, so a profile open over forward + backward counts the forward alone
                      (measured here); with an engine, print_model_profile prints training throughput as
                      `bwd_factor = 2 + recompute_fwd_factor` times the forward flops.
  ptflops             ptflops 0.7.5 has no backward option: get_model_complexity_info (ptflops/flops_counter.py)
                      "collects the amounts of parameters and MACs required to make a forward pass", and neither
                      backend runs a backward.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional, Sequence

from conventions import terms as T
from conventions.training import MEASURED, TrainingTrace, counter_convention

from .errors import UserError
from .models import ModelSpec

TRAINING_COUNTERS = ("torch_flop_counter", "calflops", "deepspeed", "ptflops")

PTFLOPS_SOURCE = "ptflops/flops_counter.py get_model_complexity_info: a forward pass only, no backward option"


def _source(tool: str) -> str:
    return PTFLOPS_SOURCE if tool == "ptflops" else counter_convention(tool).source


# ------------------------------------------------------------------------------------------------ the trace job
def check_frozen(patterns: Sequence[str]) -> tuple[str, ...]:
    """--frozen patterns, checked before any job runs (a bad regular expression is the user's error)."""
    import re

    for pattern in patterns:
        if not pattern.strip():
            raise UserError("--frozen needs a parameter-name pattern (a glob like 'transformer.h.0.*' or re:REGEX)")
        if pattern.startswith("re:"):
            try:
                re.compile(pattern[3:])
            except re.error as exc:
                raise UserError(f"--frozen {pattern!r}: not a regular expression ({exc})") from None
    return tuple(patterns)


def _on_meta(spec: ModelSpec):
    """The model with its parameters on the meta device: counting needs shapes, not values, so a step of a large
    model costs no memory and no arithmetic. A transformers spec is rebuilt on meta by its own factory (which keeps
    the key/value cache there, see hf_specs.from_transformers); any other model is moved with `.to("meta")`."""
    from . import models

    kwargs = dict(spec.factory_kwargs)
    if spec.torch_factory.endswith("hf_specs:hf_model") and kwargs.get("device") != "meta":
        kwargs["device"] = "meta"
        if "use_cache" not in spec.name:  # resolve() turned the cache off for real tensors only
            kwargs.pop("use_cache", None)
        return models.load_factory(spec.torch_factory)(**kwargs)
    return models.torch_module(spec).to("meta")


def _trace_job(spec: ModelSpec, frozen: tuple[str, ...], recompute: str):
    """In the job process: build, trace (on the meta device; on the model's own device when its forward needs
    values), return the TrainingTrace or one line saying why not."""
    from dataclasses import replace

    from . import models, runner
    from .frontends.torch_training import trace_training

    runner._silence()  # what the model prints goes nowhere; the result comes back through the pipe
    try:
        try:
            module = _on_meta(spec)
            trace = trace_training(module, models.example_input(spec, module, dispatch_level=True), spec.name, frozen,
                                   recompute, spec.token_model)
        except ValueError:
            raise
        except Exception as exc:  # noqa: BLE001 (a forward that reads values: .item(), data-dependent branches)
            module = models.torch_module(spec)
            trace = trace_training(module, models.example_input(spec, module, dispatch_level=True), spec.name, frozen,
                                   recompute, spec.token_model)
            why = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
            trace = replace(trace, notes=trace.notes + (f"traced on {trace.device}: on the meta device the forward "
                                                        f"failed ({why})",))
        return trace
    except (UserError, ValueError) as exc:
        return f"model {spec.name!r}: {exc}"
    except Exception as exc:  # noqa: BLE001 (the model's own code failed under forward + backward)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"model {spec.name!r}: forward + backward failed: {type(exc).__name__}: {first[:200]}"


def _in_job(fn, args: tuple, timeout: Optional[float], what: str):
    from . import runner

    seconds = runner.check_timeout(runner.TRACE_TIMEOUT_S if timeout is None else timeout)
    state, result = runner.fork_call(fn, args, seconds)
    if state == "timeout":
        raise UserError(f"{what} timed out after {seconds:g} s; killed")
    if state == "died":
        raise UserError(f"the process of {what} died ({runner._died(result)})")
    return result


def measure(spec: ModelSpec, frozen: Sequence[str] = (), recompute: str = "none",
            timeout: Optional[float] = None) -> TrainingTrace:
    """The measured training step of `spec` (see the module docstring); a UserError says why not."""
    if not spec.torch_factory:
        raise UserError(f"--training traces a PyTorch model; {spec.name!r} has no PyTorch definition")
    result = _in_job(_trace_job, (spec, check_frozen(frozen), recompute), timeout,
                     f"tracing forward + backward of {spec.name}")
    if isinstance(result, str):
        raise UserError(result)
    if not isinstance(result, TrainingTrace):
        raise UserError(f"model {spec.name!r}: no training trace came back ({result!r})")
    return result


# ------------------------------------------------------------------------------------------------ counters
@dataclass(frozen=True)
class CounterResult:
    """One training-FLOPs counter on one model: its number, how it decomposes, and its source."""

    tool: str
    version: str
    metric: str
    value: Optional[float]
    status: str  # ok | unsupported | error
    message: str = ""
    forward: Optional[float] = None  # the tool's forward-only count in the same mode, where its number is built on it
    decomposition: str = ""
    residual: Optional[float] = None
    source: str = ""


def _counter_job(tool: str, spec: ModelSpec):
    """In the job process: (metric, training value, forward value or None, version, note)."""
    from . import models, runner
    from .adapters import distribution_version
    from .frontends.torch_training import loss_of

    runner._silence()
    try:
        if tool == "torch_flop_counter":
            from torch.utils.flop_counter import FlopCounterMode

            def step(model) -> int:
                model.train()
                given = models.example_input(spec, model, tool, dispatch_level=True)
                counter = FlopCounterMode(model, display=False)  # as lightning's measure_flops builds it
                with counter:
                    loss_of(model(given)).backward()
                return counter.get_total_flops()
            try:  # on the meta device, as Lightning's measure_flops docstring recommends
                total = step(_on_meta(spec))
            except Exception:  # noqa: BLE001 (a forward that needs values): on the model's own device
                total = step(models.torch_module(spec))
            return ("FLOP [fwd+bwd]", total, None, distribution_version("torch"),
                    "FlopCounterMode over loss.backward(), loss = sum of the outputs")
        if tool == "calflops":
            from calflops import calculate_flops

            model = models.torch_module(spec)
            train, _, _ = calculate_flops(model, args=[models.example_input(spec, model, tool)], print_results=False,
                                          output_as_string=False, include_backPropagation=True)
            model = models.torch_module(spec)
            forward, _, _ = calculate_flops(model, args=[models.example_input(spec, model, tool)],
                                            print_results=False, output_as_string=False)
            return ("FLOPs (include_backPropagation=True)", train, forward, distribution_version("calflops"), "")
        if tool == "deepspeed":
            from .adapters.deepspeed import profiler_module

            profiler = profiler_module()
            model = models.torch_module(spec).train()
            prof = profiler.FlopsProfiler(model)
            prof.start_profile()
            out = model(models.example_input(spec, model, tool))
            forward_train = prof.get_total_flops()  # the same profile, read before the backward runs
            loss_of(out).backward()
            over_step = prof.get_total_flops()
            prof.end_profile()
            model = models.torch_module(spec)  # eval mode: what the run's deepspeed records count
            forward_eval, _, _ = profiler.get_model_profile(model, args=[models.example_input(spec, model, tool)],
                                                            print_profile=False, as_string=False)
            return ("flops (profile open over forward + backward)", over_step, (forward_train, forward_eval),
                    distribution_version("deepspeed"), "")
        raise ValueError(f"no training mode for {tool}")
    except (UserError, ImportError) as exc:
        return f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 (the tool failed on this model: its row says how)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"{type(exc).__name__}: {first[:200]}"


def explain_products(value: float, trace: TrainingTrace) -> Optional[dict[str, int]]:
    """The simplest combination of the trace's training terms (coefficients 0, 1, 2) equal to `value`: how a
    dispatch-level counter of forward + backward counted. None when none fits."""
    values = trace.terms()
    names = [T.MACC, T.ATTN, T.MACC_DGRAD, T.ATTN_DGRAD, T.MACC_WGRAD, T.MACC_RECOMPUTE, T.ATTN_RECOMPUTE]
    present = [n for n in names if values[n]]
    best = None
    for coefs in itertools.product((0, 1, 2), repeat=len(present)):
        combo = {n: c for n, c in zip(present, coefs) if c}
        if T.evaluate(combo, values) == value:
            key = (sum(1 for c in coefs if c != 2), len(combo))
            if best is None or key < best[0]:
                best = (key, combo)
    return best[1] if best else None


def _forward_explanation(spec: ModelSpec, tool: str, metric: str) -> tuple[str, Optional[float]]:
    """The decomposition and residual of the tool's own forward total, from `reconcile.explain` on a run."""
    from . import api
    from .diff import explain

    try:
        records = api.execute(api.plan(None, tool, [spec]))
        rows = explain(records, records.attrs.get("specs"), records.attrs.get("irs"))
    except UserError as exc:
        return f"(its forward total is not explained: {exc})", None
    total = rows[(rows["layer"] == "__total__") & (rows["tool"] == tool) & (rows["metric"] == metric)]
    if total.empty:
        return "(its forward total is not explained)", None
    residual = total.iloc[0]["residual"]
    return str(total.iloc[0]["decomposition"]), None if residual != residual else float(residual)


def counters(spec: ModelSpec, trace: TrainingTrace, tools: Sequence[str] = TRAINING_COUNTERS,
             timeout: Optional[float] = None, explain_forward: bool = True) -> list[CounterResult]:
    """Every training-FLOPs counter on `spec` (each in its own job), explained against `trace`."""
    from . import adapters

    out = []
    for tool in tools:
        if tool not in TRAINING_COUNTERS:
            raise UserError(f"unknown training counter {tool!r}; counters: {', '.join(TRAINING_COUNTERS)}")
        if tool == "ptflops":
            out.append(CounterResult(tool, adapters.distribution_version("ptflops"), "MACs", None, "unsupported",
                                     "no backward option in ptflops 0.7.5: both backends count one forward pass",
                                     source=_source(tool)))
            continue
        if tool in ("calflops", "deepspeed"):
            reason = adapters.get(tool).unavailable()
            if reason is None and spec.meta:
                reason = f"model {spec.name!r} is built on the meta device; {tool} needs real tensors"
            if reason:
                out.append(CounterResult(tool, adapters.get(tool).version(), "", None, "unsupported", reason,
                                         source=_source(tool)))
                continue
        try:
            result = _in_job(_counter_job, (tool, spec), timeout, f"{tool} on {spec.name}")
        except UserError as exc:  # timed out or died: that counter's row says so, the others still run
            result = str(exc)
        if isinstance(result, str):
            out.append(CounterResult(tool, adapters.get(tool).version(), "", None, "error", result,
                                     source=_source(tool)))
            continue
        metric, value, forward, version, note = result
        out.append(_explained(tool, version, metric, float(value), forward, note, spec, trace, explain_forward))
    return out


def _explained(tool, version, metric, value, forward, note, spec, trace, explain_forward) -> CounterResult:
    """The counter's number against its catalogue entry (conventions/training.py COUNTER_CONVENTIONS)."""
    entry = counter_convention(tool)
    if entry.combo:
        expected = dict(entry.combo)
        combo = expected if T.evaluate(expected, trace.terms()) == value else explain_products(value, trace)
        if combo is None:
            residual = value - T.evaluate(expected, trace.terms())
            return CounterResult(tool, version, metric, value, "ok", note, None,
                                 f"no combination of the training terms fits; {T.format_combo(expected)} differs by "
                                 f"{residual:+,.0f}", residual, entry.source)
        missing = [t for t in expected if trace.terms()[t] and combo.get(t, 0) != expected[t]]
        why = f"; leaves out {', '.join(missing)} (aten ops without a formula)" if missing else ""
        used = {t: c for t, c in combo.items() if trace.terms()[t]}
        return CounterResult(tool, version, metric, value, "ok", f"{note}{why}; {entry.says}", None,
                             T.format_combo(used), value - T.evaluate(used, trace.terms()), entry.source)
    forward_metric = "FLOPs" if tool == "calflops" else "flops"
    # the training rule: value = factor x the tool's forward count in the same mode (calflops: eval, it calls
    # model.eval(); DeepSpeed: the train-mode profile read before the backward)
    same_mode, eval_forward = (float(forward[0]), float(forward[1])) if isinstance(forward, tuple) else \
        (float(forward), float(forward))
    residual = value - entry.factor * same_mode
    times = f"{entry.factor} x " if entry.factor != 1 else ""
    if tool == "deepspeed":
        decomposition = f"its forward flops {same_mode:,.0f} (the same profile read before the backward)"
    else:
        decomposition = f"{times}its forward {forward_metric} {same_mode:,.0f}"
    if same_mode != eval_forward:
        decomposition += (f"; train mode counts {same_mode - eval_forward:+,.0f} against its eval-mode forward "
                          f"{eval_forward:,.0f} (its batch-norm rule depends on `training`)")
    message = entry.says
    if explain_forward:  # the eval-mode forward, explained by the run's catalogue (reconcile.explain)
        text, fwd_residual = _forward_explanation(spec, tool, forward_metric)
        decomposition += f"; eval-mode forward = {text}"
        if fwd_residual:
            message += (f"; the run's explanation of its forward total leaves {fwd_residual:+,.0f} unexplained "
                        "(a forward convention, not the training rule)")
    return CounterResult(tool, version, metric, value, "ok", message, same_mode, decomposition, residual,
                         entry.source)
