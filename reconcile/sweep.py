"""`reconcile sweep REGISTRY`: the reference over every model of a registry, each checked against oracles that do
not share its code.

Registries (`enumerate_jobs`): `hf`, every transformers model type with a base-model class
(MODEL_MAPPING_NAMES), built as `hf:TYPE?head=base&sizes=SIZES&attn_implementation=eager&experts_implementation=
eager` (the small-config rule: reconcile/hf_specs.py); `timm`, one model per architecture module
(`timm.list_models()` grouped by module, the first name of each) at its pretrained_cfg input size; `torchvision`,
every classification builder with weights metadata, at its weights' crop size.

One job per model (`SweepJob`, a small picklable record with a stable string `key`); `run_job(job)` runs it in a
job process and returns plain-dict rows (ROW_COLUMNS): the model row (built or why not, the two conservation laws
of the layer IR, the oracles and the gap between the reference and them, explained by op), then one row per
counting tool when tools are asked for. The driver (`sweep`) takes the executor as a parameter: the built-in
`LocalExecutor` keeps LANES warm worker processes (torch and the registry's library imported once) that fork a
child per job with the timeout and memory cap (reconcile/jobs.py), so user code never runs in the parent.

Oracles:
  - params: `sum(p.numel() for p in model.parameters())`, counted here on the built model; torchvision's
    `num_params` metadata;
  - products: torch's FlopCounterMode total / 2 (it counts 2 FLOPs per multiply-accumulate) on the same forward
    under no_grad, attention and experts eager; torchvision's `_ops` metadata (GFLOPS in its docs, a
    multiply-accumulate count: 4.089 for resnet50, whose conv+fc MACC is 4.09e9).
Where the reference and FlopCounterMode differ, one more forward under no_grad records every aten op
(frontends/torch_dispatch.py) and the gap is split by op: an op FlopCounterMode has no formula for (the oneDNN
recurrent kernels, the fused fast path of nn.MultiheadAttention, ...) or an op both count differently. A gap equal
to the sum of its parts is `explained`, with those parts named in `gap_kind`.

Resumable: each finished job's rows are kept in the one cache (reconcile/cache.py `sweep_rows`), keyed by the
job's key, the library versions and the project's code; a rerun runs only the jobs without an entry (a timeout or
a dead process is not kept). The outputs (`write`): DIR/sweep.csv (one row per model, plus tool rows), DIR/
summary.md (counts, failures with their reasons, every remaining difference), both deterministic, and
DIR/timings.csv (seconds per job: not deterministic, kept apart): reconcile/sweep_report.py.
"""
from __future__ import annotations

import csv
import io
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Any, Callable, Iterable, Iterator, Optional

from . import jobs as procs
from .errors import NEEDS_LIBRARY, UserError
from .spec import HF_REGISTRY, TIMM_REGISTRY, TORCHVISION_REGISTRY

REGISTRIES = (HF_REGISTRY, TIMM_REGISTRY, TORCHVISION_REGISTRY)
SIZES = ("small", "default")
DEFAULT_TIMEOUT_S = 300.0
LANES = 2  # worker processes of the built-in executor (the machines have 2 cores)

# statuses of a model row
TRACED = "traced"  # built, ran forward, traced to the layer IR
BUILD_FAILED = "build_failed"  # the spec or the builder refused (configuration, class, input)
FORWARD_FAILED = "forward_failed"  # built, but its forward raised on the input
TRACE_FAILED = "trace_failed"  # the forward ran, the front end failed
MISSING_LIBRARY = "missing_library"  # the builder imports a library not installed (errors.NEEDS_LIBRARY)
TIMEOUT = "timeout"
DIED = "died"
FAILED = (BUILD_FAILED, FORWARD_FAILED, TRACE_FAILED, MISSING_LIBRARY, TIMEOUT, DIED)
TRANSIENT = (TIMEOUT, DIED)  # not kept in the cache: another run may finish

EXACT = "exact"
EXPLAINED = "explained"
UNEXPLAINED = "unexplained"

META_DEFAULT = "default-meta"  # an attempt's sizes: the configuration's own, on the meta device
EXTRA = ("extra",)  # placeholder: the extra inputs the model's forward takes (hf_specs.EXTRA_INPUTS), found in the job
ROW_COLUMNS = ("registry", "model", "spec", "tool", "status", "reason", "fallback", "model_class", "input_shape",
               "params_oracle", "params_reference", "params_law", "params_gap", "active_params",
               "macc_reference", "macc_law", "macc_law_gap", "macc_oracle", "macc_gap", "gap_verdict", "gap_kind",
               "metadata_params", "metadata_macc", "unsupported_ops", "tool_version", "tool_metric", "tool_value",
               "tool_residual")
MODEL_ROW = ""  # the `tool` of a model row


def hf_sweep_spec(model_type: str, sizes: str = "small", inputs: tuple[str, ...] = ()) -> str:
    """The spec `reconcile sweep hf` builds a model type from: the base model, eager attention and experts, at
    `sizes` (META_DEFAULT: the configuration's own sizes, built without memory for weights)."""
    extra = f"&inputs={','.join(inputs)}" if inputs else ""
    where = ""
    if sizes == META_DEFAULT:
        sizes, where = "default", "&device=meta"
    return (f"hf:{model_type}?head=base&sizes={sizes}&attn_implementation=eager&experts_implementation=eager"
            f"{extra}{where}")


@dataclass(frozen=True)
class SweepJob:
    """One model of a registry: picklable, its `key` stable across runs and machines."""
    registry: str
    name: str
    sizes: str = "small"
    tools: tuple[str, ...] = ()
    timeout: float = DEFAULT_TIMEOUT_S

    @property
    def spec_text(self) -> str:
        return self.attempt_text(self.sizes)

    def attempt_text(self, sizes: str, inputs: tuple[str, ...] = ()) -> str:
        if self.registry == HF_REGISTRY:
            return hf_sweep_spec(self.name, sizes, inputs)
        form = f"{'tv' if self.registry == TORCHVISION_REGISTRY else 'timm'}:{self.name}"
        return form + ("?device=meta" if sizes == META_DEFAULT else "")

    def attempts(self) -> list[tuple[str, tuple[str, ...]]]:
        """(sizes, extra inputs) to try in order: an hf model the small-config rule cannot build (or whose
        forward refuses the main input alone) is tried with the inputs its forward takes from the configuration,
        then with the rule's depth only (sizes=layers: widths as configured), then as configured on the meta
        device (no memory for weights; FlopCounterMode and the reference count from shapes)."""
        if self.registry != HF_REGISTRY:  # built on the meta device (their largest take minutes on a CPU), else on it
            return [(META_DEFAULT, ()), ("default", ())]
        order = {"small": ("small", "layers", META_DEFAULT)}.get(self.sizes, (self.sizes,))
        return [(sizes, inputs) for sizes in order for inputs in ((), EXTRA)]

    @property
    def key(self) -> str:
        tools = f"&tools={','.join(self.tools)}" if self.tools else ""
        return f"{self.registry}/{self.name}?sizes={self.sizes}{tools}"


def blank_row(job: SweepJob, tool: str = MODEL_ROW) -> dict[str, Any]:
    row: dict[str, Any] = {c: "" for c in ROW_COLUMNS}
    row.update(registry=job.registry, model=job.name, spec=job.spec_text, tool=tool)
    return row


def failed_rows(job: SweepJob, status: str, reason: str) -> list[dict[str, Any]]:
    row = blank_row(job)
    row.update(status=status, reason=reason)
    return [row]


# ------------------------------------------------------------------------------------------------ enumeration
def _hf_names() -> list[str]:
    from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES

    return sorted(MODEL_MAPPING_NAMES)


def _timm_names() -> list[str]:
    """The first model (sorted) of each timm architecture module."""
    from .zoo_specs import import_timm

    timm = import_timm()
    first: dict[str, str] = {}
    for module in timm.list_modules():
        names = sorted(timm.list_models(module=module))
        if names:
            first[module] = names[0]
    return sorted(first.values())


def _torchvision_names() -> list[str]:
    """Classification builders (torchvision.models' own namespace) with weights metadata."""
    from .zoo_specs import import_torchvision

    tv = import_torchvision()
    out = []
    for name in tv.models.list_models(module=tv.models):
        try:
            weights = tv.models.get_model_weights(name).DEFAULT
        except (ValueError, AttributeError, KeyError):
            continue
        if "num_params" in weights.meta and "_ops" in weights.meta:
            out.append(name)
    return sorted(out)


_LISTERS = {HF_REGISTRY: _hf_names, TIMM_REGISTRY: _timm_names, TORCHVISION_REGISTRY: _torchvision_names}


def enumerate_jobs(registry: str, sizes: str = "small", tools: Iterable[str] = (),
                   timeout: float = DEFAULT_TIMEOUT_S, names: Optional[Iterable[str]] = None) -> list[SweepJob]:
    """Every model of the registry as a SweepJob (the library is imported in a job process, not here).
    `names`: only these (a rerun of some models)."""
    check_options(registry, sizes)
    listed = procs.call_in_job(_LISTERS[registry], (), f"listing the {registry} models")
    if names is not None:
        wanted = list(dict.fromkeys(names))
        # timm: any model name (the sweep's list is one per architecture module; the job says if there is none)
        unknown = [n for n in wanted if n not in listed] if registry != TIMM_REGISTRY else []
        if unknown:
            raise UserError(f"{registry} has no model {', '.join(map(repr, unknown[:5]))}")
        listed = wanted
    return [SweepJob(registry, name, sizes, tuple(tools), timeout) for name in listed]


def check_options(registry: str, sizes: str) -> None:
    """A registry and sizes this module knows, and the registry's library installed: before anything is written."""
    if registry not in REGISTRIES:
        from . import names as naming

        raise UserError(f"unknown registry {registry!r}{naming.suggestion(naming.close(registry, REGISTRIES))}; "
                        f"one of {', '.join(REGISTRIES)}")
    if sizes not in SIZES:
        raise UserError(f"--sizes must be one of {', '.join(SIZES)}, not {sizes!r}")
    if registry in (TIMM_REGISTRY, TORCHVISION_REGISTRY):
        from .zoo_specs import TIMM, TV, _available

        missing = _available(TV if registry == TORCHVISION_REGISTRY else TIMM)
        if missing:
            raise UserError(missing)


# ------------------------------------------------------------------------------------------------ one job
def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:300]}" if text else type(exc).__name__


_SPEC_PREFIX = re.compile(r"^(UserError: )?model (spec )?'[^']*'(: | )")
# where this machine installed a library ('/home/u/.venv/lib/python3.11/site-packages/'): a reason names the module
# file from its package on ('transformers/models/...'), the same on every machine
_INSTALL_PREFIX = re.compile(r"(?:/[^\s'\"<>]*)?/(?:site|dist)-packages/")


def short_reason(text: str) -> str:
    """A failure without the spec text it repeats (the row names the spec) and without install paths."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return _INSTALL_PREFIX.sub("", _SPEC_PREFIX.sub("", first))[:300]


def _spec(text: str):
    if text.startswith("hf:"):
        from .hf_specs import from_transformers

        return from_transformers(text, probe_here=True)
    from .zoo_specs import from_zoo

    return from_zoo(text, probe_here=True)


def _extra_inputs(name: str) -> tuple[str, ...]:
    """The inputs besides the main one that the base model's forward takes and the configuration can size."""
    import inspect

    from transformers import AutoConfig

    from .hf_specs import EXTRA_INPUTS, MASK_OF_MAIN, REQUIRED_ONLY_INPUTS, model_class
    from .hf_vision_inputs import VISION_INPUTS, wanted

    try:
        config = AutoConfig.for_model(name)
        cls = model_class(name, "base", config)
        accepted = inspect.signature(cls.forward).parameters
    except Exception:  # noqa: BLE001 (no class: the attempt itself says why)
        return ()
    main = getattr(cls, "main_input_name", "input_ids")
    names = [p for p in accepted if p != "self"]
    main = main if main in names or not names else names[0]
    required = {n for n, p in accepted.items() if p.default is inspect.Parameter.empty}
    # input_ids only where the forward needs it besides another main input (BLIP-2: pixel_values first), or a text
    # tower's; the vision inputs where hf_vision_inputs.wanted says
    return tuple(n for n in EXTRA_INPUTS if n in accepted and n != main and n != "attention_mask"
                 and (n not in REQUIRED_ONLY_INPUTS + VISION_INPUTS or MASK_OF_MAIN.get(n) == main
                      or wanted(n, main, accepted, required, config)))


def flop_counter_macc(module, example, grad: bool = False) -> tuple[int, dict[str, int]]:
    """FlopCounterMode's total / 2 (torch/utils/flop_counter.py counts 2 FLOPs per multiply-accumulate) under
    no_grad (or with grad enabled), and its FLOPs per op packet."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.set_grad_enabled(grad), FlopCounterMode(display=False) as counter:
        module(example)
    per_op: Counter = Counter()
    for ops in counter.get_flop_counts().get("Global", {}).items():
        per_op[str(ops[0]).rpartition(".")[2] if "." in str(ops[0]) else str(ops[0])] += int(ops[1])
    return counter.get_total_flops() // 2, dict(per_op)


def reference_products_by_op(module, example) -> dict[str, int]:
    """The op table's multiply-accumulates per aten op of one no_grad forward (the mode FlopCounterMode ran)."""
    import torch

    from .frontends.torch_dispatch import Call, Recorder

    root = Call("")
    recorder = Recorder(root, module, (example,))
    with torch.no_grad(), recorder:
        module(example)
    out: Counter = Counter()
    for op in root.all_ops():
        if op.products:
            out[op.op] += op.products
    return dict(out)


def explain_gap(module, example, reference: int, oracle: int, oracle_ops: dict[str, int]) -> tuple[str, str]:
    """(verdict, kind): the difference reference - oracle split by op (module docstring)."""
    from torch.utils.flop_counter import flop_registry

    known = {str(op).rpartition(".")[2] for op in flop_registry}
    ours = reference_products_by_op(module, example)
    parts = []
    explained = 0
    for op in sorted(set(ours) | set(oracle_ops)):
        mine, theirs = ours.get(op, 0), oracle_ops.get(op, 0) // 2
        if mine == theirs:
            continue
        if op not in known:
            parts.append(f"{op}: no FlopCounterMode formula ({mine:,})")
        else:
            parts.append(f"{op}: reference {mine:,} vs FlopCounterMode {theirs:,}")
        explained += mine - theirs
    if not parts:
        return UNEXPLAINED, "the no_grad forward's ops agree; the gap comes from the traced (grad-enabled) forward"
    if explained == reference - oracle:
        return EXPLAINED, "; ".join(parts)
    return UNEXPLAINED, "; ".join(parts) + f" (sum {explained:,} of {reference - oracle:,})"


def _measure(job: SweepJob, spec, row: dict[str, Any]) -> list[dict[str, Any]]:
    from conventions import ir as kinds
    from conventions.formulas import model_counts

    from . import models
    from .frontends import torch_ir

    try:
        module = models.torch_module(spec)
    except Exception as exc:  # noqa: BLE001 (a row of the table)
        row.update(status=BUILD_FAILED, reason=short_reason(_first_line(exc)))
        return [row]
    row["model_class"] = type(module).__name__
    try:
        models.check_forward(module, spec)
    except Exception as exc:  # noqa: BLE001
        row.update(status=FORWARD_FAILED, reason=short_reason(_first_line(exc)))
        return [row]
    try:
        graph = torch_ir.from_module(module, spec.input_shape, spec.name, input_dtype=models.input_dtype(spec))
    except Exception as exc:  # noqa: BLE001
        row.update(status=TRACE_FAILED, reason=_first_line(exc))
        return [row]
    models.remember_ir(spec, "torch", graph)
    total = model_counts(graph)[-1][1]
    gap = next((layer for layer in graph.layers if layer.kind == kinds.GAP), None)
    gap_macc = int(gap.attr("macc", 0)) if gap is not None else 0
    row.update(status=TRACED, params_reference=total.params, macc_reference=total.macc,
               params_oracle=sum(p.numel() for p in module.parameters()),
               params_gap=gap.params if gap is not None else 0, macc_law_gap=gap_macc,
               active_params="" if total.active_params is None else total.active_params,
               unsupported_ops=",".join(sorted({layer.op for layer in graph.layers
                                                if layer.kind == kinds.UNSUPPORTED_OP})))
    row["params_law"] = EXACT if not row["params_gap"] else "gap"
    row["macc_law"] = EXACT if not gap_macc else "gap"
    example = models.example_input(spec, module, dispatch_level=True)
    try:
        oracle, oracle_ops = flop_counter_macc(module, example)
    except Exception as exc:  # noqa: BLE001 (a custom autograd Function may need grad: the other mode)
        try:
            oracle, oracle_ops = flop_counter_macc(module, example, grad=True)
            row["fallback"] = f"FlopCounterMode under no_grad failed ({_first_line(exc)[:120]}): counted with grad"
        except Exception as again:  # noqa: BLE001 (the oracle itself failed: said, the reference stands)
            row.update(gap_verdict=UNEXPLAINED, gap_kind=f"FlopCounterMode failed: {_first_line(again)}")
            return [row]
    row.update(macc_oracle=oracle, macc_gap=total.macc - oracle)
    if total.macc == oracle:
        row["gap_verdict"] = EXACT
    else:
        try:
            row["gap_verdict"], row["gap_kind"] = explain_gap(module, example, total.macc, oracle, oracle_ops)
        except Exception as exc:  # noqa: BLE001
            row.update(gap_verdict=UNEXPLAINED, gap_kind=f"splitting the gap by op failed: {_first_line(exc)}")
    if job.registry == TORCHVISION_REGISTRY:
        _torchvision_metadata(job.name, row)
    return [row]


def _torchvision_metadata(name: str, row: dict[str, Any]) -> None:
    """torchvision's weights metadata: num_params, and _ops in GFLOPS that are multiply-accumulates (their
    resnet50 4.089 is its conv+fc MACC, 4,089,184,256), given to 3 decimals: compared at that precision."""
    from .zoo_specs import tv_weights

    weights = tv_weights(name)
    if weights is None:
        return
    row["metadata_params"] = int(weights.meta["num_params"])
    row["metadata_macc"] = f"{float(weights.meta['_ops']):.3f}e9"


def _tool_rows(job: SweepJob, spec) -> list[dict[str, Any]]:
    """Each tool's total on the model, in its own forked child (tools patch modules), with the residual of its
    explanation in the reference's terms."""
    import multiprocessing

    from . import api, models
    from .diff import explain
    from .records import OK, TOTAL
    from .runner import Job, Outcome, _run_forked, stamp

    # this job's own process is a daemon (jobs.fork_call), and daemons may not start processes: each tool's child
    # is killed with this process's group all the same
    multiprocessing.current_process()._config["daemon"] = False
    rows = []
    records = []
    for tool in job.tools:
        result = _run_forked(Job(tool, spec), job.timeout)
        got = result.records if isinstance(result, Outcome) else result
        records += got
        for record in got:
            if record.layer != TOTAL and not (record.status != OK and record.layer.startswith("__")):
                continue
            row = blank_row(job, tool)
            row.update(status=record.status, tool_version=record.tool_version, tool_metric=record.metric,
                       tool_value="" if record.value is None else record.value,
                       reason=record.message[:200] if record.status != OK else "")
            rows.append(row)
    if records:
        try:
            frame = api.frame(stamp(records, spec))
            explained = explain(frame, {spec.name: spec}, {spec.name: models.cached_ir(spec, "torch")})
            residuals = {(r["tool"], r["metric"]): r["residual"] for _, r in explained.iterrows()
                         if r["layer"] == TOTAL}
            for row in rows:
                value = residuals.get((row["tool"], row["tool_metric"]))
                row["tool_residual"] = "" if value is None else value
        except Exception as exc:  # noqa: BLE001 (totals stand without residuals)
            for row in rows:
                row["tool_residual"] = f"not explained: {_first_line(exc)}"
    return rows


def _attempt_name(text: str) -> str:
    """An attempt's spec query without the keys every attempt shares."""
    keys = [part for part in text.partition("?")[2].split("&")
            if part not in ("head=base", "attn_implementation=eager", "experts_implementation=eager")]
    return "&".join(keys) or text


def run_job(job: SweepJob) -> list[dict[str, Any]]:
    """One model: build it, trace it, check the laws and the oracles (module docstring). Runs user code: call it
    in a job process (the executors do). Never raises: every failure is the model row's status and reason."""
    try:
        _zoo_first()
    except Exception:  # noqa: BLE001 (a broken torchvision: the models that need it say so)
        pass
    earlier: list[str] = []
    first: Optional[dict[str, Any]] = None
    extras: Optional[tuple[str, ...]] = None
    rows: list[dict[str, Any]] = []
    tried = set()
    for sizes, inputs in job.attempts():
        if inputs == EXTRA:
            extras = _extra_inputs(job.name) if extras is None else extras
            inputs = extras
        text = job.attempt_text(sizes, inputs)
        if text in tried:
            continue
        tried.add(text)
        row = blank_row(job)
        row["spec"] = text
        try:
            spec = _spec(text)
        except Exception as exc:  # noqa: BLE001
            reason = short_reason(str(exc) if isinstance(exc, UserError) else _first_line(exc))
            row.update(status=MISSING_LIBRARY if reason.startswith(NEEDS_LIBRARY) else BUILD_FAILED, reason=reason)
            rows = [row]
        else:
            row["input_shape"] = "x".join(map(str, spec.input_shape))
            rows = _measure(job, spec, row)
            if job.tools and rows[0]["status"] == TRACED:
                rows += _tool_rows(job, spec)
        if rows[0]["status"] not in (BUILD_FAILED, FORWARD_FAILED):
            break
        earlier.append(f"{_attempt_name(text)}: {rows[0]['reason'][:160]}")
        first = first or rows[0]
    if rows[0]["status"] in (BUILD_FAILED, FORWARD_FAILED) and first is not None:
        # the rule's own failure is the reason (a later attempt's, on meta tensors, says less); the rest follow
        rows = [first] + rows[1:]
        earlier = earlier[1:]
    rows[0]["fallback"] = " / ".join(filter(None, earlier + [rows[0]["fallback"]]))
    return rows


# ------------------------------------------------------------------------------------------------ executors
Executor = Callable[[list[SweepJob]], Iterator[tuple[SweepJob, list[dict[str, Any]], float]]]

_WARM = {HF_REGISTRY: ("torch", "transformers", "reconcile.frontends.torch_ir", "torch.utils.flop_counter"),
         TIMM_REGISTRY: ("torch", "reconcile.frontends.torch_ir", "torch.utils.flop_counter"),
         TORCHVISION_REGISTRY: ("torch", "reconcile.frontends.torch_ir", "torch.utils.flop_counter")}


def _zoo_first() -> None:
    """torchvision (with its meta registrations stubbed where they fail: reconcile/zoo_specs.py) imported before
    transformers, where it is installed: transformers' timm backbones (DETR, ...) then find timm importable."""
    from .factories import locate_module

    if locate_module("torchvision") is not None:
        from .zoo_specs import import_torchvision

        import_torchvision()


def _warm(registries: set[str]) -> None:
    import importlib

    _zoo_first()
    for registry in sorted(registries):
        for name in _WARM[registry]:
            importlib.import_module(name)
        if registry == TIMM_REGISTRY:
            from .zoo_specs import import_timm

            import_timm()
        elif registry == TORCHVISION_REGISTRY:
            from .zoo_specs import import_torchvision

            import_torchvision()


def _run_in_child(job: SweepJob, timeout: float) -> list[dict[str, Any]]:
    state, result = procs.fork_call(run_job, (job,), timeout)
    if state == "timeout":
        return failed_rows(job, TIMEOUT, f"timed out after {timeout:g} s; killed")
    if state == "died" or not isinstance(result, list):
        code = result if state == "died" else None
        return failed_rows(job, DIED, f"its process died ({procs.died(code)}) without a result"
                                      f"{procs.cap_hint(code)}")
    return result


def _serve(conn, registries: set[str], memory: Optional[int]) -> None:
    """A warm worker: imports once, then forks one child per job it is sent."""
    procs.become_worker(memory)
    procs.single_threaded()
    try:
        _warm(registries)
    except Exception:  # noqa: BLE001 (each job imports again and says why it cannot)
        pass
    for job in procs.jobs_from(conn):
        started = time.monotonic()
        rows = _run_in_child(job, job.timeout)
        conn.send((rows, time.monotonic() - started))


@dataclass
class LocalExecutor:
    """LANES warm worker processes on this machine, each forking a child per job (reconcile/jobs.py)."""
    lanes: int = LANES
    workers: list = field(default_factory=list)

    def __call__(self, jobs: list[SweepJob]) -> Iterator[tuple[SweepJob, list[dict[str, Any]], float]]:
        if not jobs:
            return
        ctx = procs.CTX
        registries = {job.registry for job in jobs}
        memory = procs.memory_cap()
        queue = list(jobs)
        busy: dict[Any, tuple[Any, SweepJob, float]] = {}
        try:
            for _ in range(max(1, min(self.lanes, len(jobs)))):
                parent, child = ctx.Pipe()
                procs.PARENT_ENDS.append(parent)
                process = ctx.Process(target=_serve, args=(child, registries, memory))
                procs.start_process(process)
                procs.own_group(process.pid)
                child.close()
                self.workers.append((parent, process))
            idle = [w for w in self.workers]
            while queue or busy:
                while idle and queue:
                    conn, process = idle.pop()
                    job = queue.pop(0)
                    conn.send(job)
                    busy[conn] = (process, job, time.monotonic())
                ready = wait(list(busy), timeout=5.0)
                for conn in ready:
                    process, job, started = busy.pop(conn)
                    try:
                        rows, seconds = conn.recv()
                    except (EOFError, OSError):  # the worker itself died: restart it
                        rows, seconds = failed_rows(job, DIED, "its worker process died"), 0.0
                        conn, process = self._restart(conn, process, registries, memory)
                    idle.append((conn, process))
                    yield job, rows, seconds
                for conn, (process, job, started) in list(busy.items()):  # a stuck worker (the child has its own)
                    if time.monotonic() - started > job.timeout + 60:
                        busy.pop(conn)
                        conn, process = self._restart(conn, process, registries, memory)
                        idle.append((conn, process))
                        yield job, failed_rows(job, TIMEOUT, f"timed out after {job.timeout:g} s; killed"), 0.0
        finally:
            self.close()

    def _restart(self, conn, process, registries, memory):
        procs.kill_group(process.pid)
        process.join(5)
        if conn in procs.PARENT_ENDS:
            procs.PARENT_ENDS.remove(conn)
        conn.close()
        self.workers = [w for w in self.workers if w[1] is not process]
        parent, child = procs.CTX.Pipe()
        procs.PARENT_ENDS.append(parent)
        new = procs.CTX.Process(target=_serve, args=(child, registries, memory))
        procs.start_process(new)
        procs.own_group(new.pid)
        child.close()
        self.workers.append((parent, new))
        return parent, new

    def close(self) -> None:
        for conn, process in self.workers:
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        for conn, process in self.workers:
            process.join(5)
            if process.exitcode is None:
                procs.kill_group(process.pid)
                process.join(5)
            if conn in procs.PARENT_ENDS:
                procs.PARENT_ENDS.remove(conn)
            conn.close()
        self.workers = []


# ------------------------------------------------------------------------------------------------ the driver
def versions_of(registry: str) -> str:
    from .cache import _versions as versions

    libraries = {HF_REGISTRY: ("transformers",), TIMM_REGISTRY: ("timm", "torchvision"),
                 TORCHVISION_REGISTRY: ("torchvision",)}
    return versions(("torch",) + libraries[registry])


Progress = Callable[[int, int, SweepJob, list[dict[str, Any]], float, bool], None]


def sweep(jobs: list[SweepJob], executor: Optional[Executor] = None, progress: Optional[Progress] = None,
          fresh: bool = False, use_cache: bool = True) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Every job's rows (in job order) and seconds per job key (0 for a cached one). Jobs with cached rows are
    not run (unless `fresh`); the others go to `executor` (default LocalExecutor()), and their rows are cached
    unless they timed out or died."""
    from . import cache

    executor = executor or LocalExecutor()
    versions = {registry: versions_of(registry) for registry in {job.registry for job in jobs}}
    results: dict[str, list[dict[str, Any]]] = {}
    seconds: dict[str, float] = {}
    todo = []
    done = 0
    for job in jobs:
        rows = None if fresh or not use_cache else cache.sweep_rows(job.key, versions[job.registry])
        if rows is None:
            todo.append(job)
            continue
        results[job.key], seconds[job.key] = rows, 0.0
        done += 1
        if progress:
            progress(done, len(jobs), job, rows, 0.0, True)
    for job, rows, took in executor(todo):
        results[job.key], seconds[job.key] = rows, took
        done += 1
        if use_cache and rows and rows[0]["status"] not in TRANSIENT:
            cache.store_sweep_rows(job.key, versions[job.registry], rows)
        if progress:
            progress(done, len(jobs), job, rows, took, False)
    return [row for job in jobs for row in results.get(job.key, [])], seconds
