"""The discrepancy atlas: every model x every counter x every release, as one sweep into the store
(reconcile/store.py), run on an engine (reconcile/engines), rendered by reconcile/atlas_report.py.

A job is (model, tool, release). A release other than the venv's own is pip-installed into its own folder
(reconcile.drift.install, as `reconcile matrix` does) by the driver before any job runs, and the job runs with
that folder first on sys.path in its child. A release pip cannot install is an error row of each of its jobs. The
reference, the document's formulas (tool `document`), is one more job per model.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from . import adapters, kept_specs
from .engines import Engine, Failed
from .engines.tooljob import JobResult, ToolJob, registries_of, run_tool_job, warm
from .errors import UserError
from .records import ERROR, MODEL_LEVEL, Record
from .spec import ModelSpec
from .store import Store, job_key
from .sweep import hf_sweep_spec

REFERENCE_TOOL = "document"
# Tools whose releases the atlas sweeps (their adapters name a DISTRIBUTION `reconcile matrix` can install).
# tf_profiler runs TensorFlow in-process (not fork-safe) and reads Keras twins; netscope reads prototxt only.
RELEASED_TOOLS = ("thop", "torchinfo", "ptflops_pytorch", "ptflops_aten", "fvcore", "calflops")
# The venv's other counters, at their pinned version.
PINNED_TOOLS = ("torchstat", "torchsummary", "torch_flop_counter", "deepspeed", "ultralytics_thop")
# `--releases all`: every release the registry lists (reconcile/releases.json, in the order released) of these.
# Not deepspeed (its releases build native ops and pull their own torch at install), nor ultralytics_thop (its
# adapter imports only the pinned install, reconcile/adapters/ultralytics_thop.py `isolated_thop`).
EVERY_RELEASE_TOOLS = RELEASED_TOOLS + ("torchstat", "torchsummary")
ALL_RELEASES = "all"
# The releases the committed atlas sweeps: the last release of each minor line that installs next to torch 2.13
# (upgrade order; the venv's pin last). `reconcile atlas sweep --releases TOOL=v1,v2` sweeps others.
RELEASES = {
    "thop": ("0.0.22", "0.0.23.post1908061459", "0.0.30.post1908302010", "0.0.31.post2005241907",
             "0.1.0.post2207010342", "0.1.1.post2209072238"),
    "torchinfo": ("1.5.4", "1.6.6", "1.7.2", "1.8.0"),
    "ptflops_pytorch": ("0.6.9", "0.7", "0.7.2.2", "0.7.4", "0.7.5"),
    "ptflops_aten": ("0.7.4", "0.7.5"),
    "fvcore": ("0.1.2.post20201218", "0.1.3.post20210317", "0.1.5.post20221221"),
    "calflops": ("0.2.9", "0.3.0", "0.3.2"),
}

# The atlas's models: the reference CNNs and attention blocks, and transformers architectures at small configs
# (two layers, width 64: the conventions a counter applies do not depend on the size, and the jobs stay short).
_SMALL_TEXT = "num_hidden_layers=2&hidden_size=64&num_attention_heads=2&intermediate_size=128"
CORE_MODELS = ("lenet", "lenet_relu_module", "sepnet", "gconv", "mha", "block", "resblock", "mobilenet_v2",
          "hf:gpt2?n_layer=2&n_embd=64&n_head=2&vocab_size=512&n_positions=64&bos_token_id=0&eos_token_id=0",
          f"hf:bert?{_SMALL_TEXT}&vocab_size=512&max_position_embeddings=64",
          f"hf:llama?{_SMALL_TEXT}&num_key_value_heads=1&vocab_size=512&max_position_embeddings=64",
          f"hf:vit?{_SMALL_TEXT}&image_size=32&patch_size=8")
# More transformers architectures, as `reconcile sweep hf` names them (its small-config rule,
# reconcile/hf_specs.py): the same models as those rows of the atlas's matrix of every architecture.
MORE_HF = tuple(hf_sweep_spec(t)
                for t in ("t5", "roberta", "mistral", "qwen2", "mixtral", "gpt_neox", "swin", "convnext"))
MODELS = CORE_MODELS + MORE_HF
# Architecture family of the reference models (an hf: spec's family is its model type).
FAMILIES = {"lenet": "cnn (LeNet)", "lenet_relu_module": "cnn (LeNet)", "sepnet": "cnn (separable)",
            "gconv": "cnn (grouped conv)", "resblock": "cnn (residual)", "mobilenet_v2": "cnn (separable)",
            "resnet18": "cnn (residual)", "resnet50_v1": "cnn (residual)", "resnet50_v15": "cnn (residual)",
            "vgg16": "cnn (plain)", "alexnet": "cnn (plain)", "mobilenet_v1": "cnn (separable)",
            "mha": "attention (torch MHA)", "block": "transformer block (torch)"}


# The atlas's breadth: every transformers model type `reconcile sweep hf` built and traced, as that sweep named it
# (its committed table; `reconcile atlas sweep --architectures`, at the venv's pinned counters).
HF_SWEEP_TABLE = Path(__file__).resolve().parent.parent / "reports" / "sweep" / "hf" / "sweep.csv"


def sweep_architectures(table: Path = HF_SWEEP_TABLE) -> list[str]:
    """The specs of the hf sweep's table that built and traced (its model rows, status `traced`), in its order."""
    import csv

    from .sweep import TRACED

    try:
        with open(table, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise UserError(f"--architectures reads the hf sweep's table {table.name}: {exc.strerror}") from None
    return [row["spec"] for row in rows if not row.get("tool") and row.get("status") == TRACED and row.get("spec")]


def family(model: str) -> str:
    if kept_specs.is_kept(model):
        return model.split(":", 1)[1].split("?", 1)[0]
    return FAMILIES.get(model, "other")


def resolve_models(names: Optional[Sequence[str]] = None) -> list[ModelSpec]:
    from . import models

    names = list(dict.fromkeys(names if names is not None else MODELS))
    if not names:
        raise UserError("--models is empty: name at least one model, or leave the option out for the atlas's")
    kept = resolve_kept([name for name in names if kept_specs.is_kept(name)])
    return [kept[name] if name in kept else
            models.resolve(name) if ":" in name or name.endswith(".prototxt") else models.reference(name)
            for name in names]


def resolve_kept(names: list[str]) -> dict[str, ModelSpec]:
    """hf:/preset: specs by name, as `which` keeps them (kept_specs: from the cache, the others in one job: a sweep
    of every architecture resolves hundreds)."""
    kept = kept_specs.resolve_kept([kept_specs.request(name) for name in names])
    return {name: kept[kept_specs.request(name)] for name in names}


def tool_list(names: Optional[Sequence[str]] = None) -> list[str]:
    names = list(dict.fromkeys(names if names is not None else (REFERENCE_TOOL,) + RELEASED_TOOLS + PINNED_TOOLS))
    if not names:
        raise UserError("--tools is empty: name at least one tool, or leave the option out for the atlas's")
    for name in names:
        module = adapters.get(name)
        if module.WORKER == "tf":
            raise UserError(f"tool {name!r} runs TensorFlow in its worker's own process (not fork-safe): the atlas "
                            "runs forked jobs only")
    return names


def check_out(out: Path) -> None:
    """--out: a folder (created if needed) whose store/ is a real folder, writable; checked before any job."""
    import os

    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: not a folder")
    folder = out / "store"
    if folder.is_symlink():
        raise UserError(f"--out {out}: its store/ is a symlink; give a folder whose store/ is a real folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {out}: cannot create {folder} ({exc.strerror})") from None
    if not os.access(folder, os.W_OK):
        raise UserError(f"--out {out}: {folder} is not writable")


def _existing_store(store_dir: "str | Path") -> Path:
    path = Path(store_dir)
    if not (path / "store").is_dir():
        raise UserError(f"{store_dir}: no sweep store here (expected {path / 'store'}/; `reconcile atlas sweep "
                        f"--out {store_dir}` makes one)")
    return path


def query(store_dir: "str | Path", sql: str):
    from . import store

    return store.query(_existing_store(store_dir), sql)


def export(store_dir: "str | Path") -> str:
    from . import store

    return store.export_csv(_existing_store(store_dir))


@dataclass
class Plan:
    jobs: list[ToolJob]
    failed: dict[str, tuple[ToolJob, str]] = field(default_factory=dict)  # key -> (job, why it cannot run)
    installs: list[tuple[str, object]] = field(default_factory=list)  # (tool, drift.Install)


def installed_version(tool: str) -> str:
    return adapters.get(tool).version()


def distribution(tool: str) -> Optional[str]:
    return getattr(adapters.get(tool), "DISTRIBUTION", None)


def every_release(tool: str, listing=None) -> list[str]:
    """Every release of the tool's distribution the committed registry listing holds, in the order released."""
    from . import releases

    dist = distribution(tool)
    if not dist:
        raise UserError(f"--releases {tool}=all: tool {tool!r} names no distribution to list releases of")
    found = [r.version for r in (listing or releases.load()).releases(dist)]
    if not found:
        raise UserError(f"--releases {tool}=all: {dist} is not in reconcile/releases.json (`reconcile atlas "
                        "releases --from-registry` lists it)")
    return found


def plan(specs: Sequence[ModelSpec], tools: Sequence[str], releases: dict[str, Sequence[str]], timeout: float,
         memory: int, tool_cache: Optional[Path] = None,
         on_install: Optional[Callable] = None) -> Plan:
    """The jobs, model-major, each tool's releases in upgrade order; installs the releases that are not the venv's
    (a failed install makes its jobs error rows, `Plan.failed`)."""
    from . import drift, releases as registry

    listing = registry.load()
    out = Plan([])
    cache = drift.cache_root(str(tool_cache) if tool_cache else None)
    folders: dict[tuple[str, str], tuple[Optional[str], str]] = {}  # (tool, release) -> (folder, error)
    wanted: list[tuple[str, str]] = []
    for tool in tools:
        for release in releases.get(tool) or (installed_version(tool),):
            wanted.append((tool, release))
            if release == installed_version(tool):
                folders[(tool, release)] = (None, "")
                continue
            _, dist = drift.tool_distribution(tool)
            listed = listing.find(dist, release)
            problem = listed.install_problem() if listed else ""
            inst = drift.Install(release, None, "failed", f"pip cannot install {dist}=={release}: {problem}") \
                if problem else drift.install(dist, release, cache)
            out.installs.append((tool, inst))
            if on_install:
                on_install(tool, inst)
            folders[(tool, release)] = (str(inst.folder.resolve()) if inst.folder else None, inst.error)
            if not inst.folder and not inst.error:
                folders[(tool, release)] = (None, "not installed")
    for spec in specs:
        for tool, release in wanted:
            folder, error = folders[(tool, release)]
            module = adapters.get(tool)
            job = ToolJob(job_key(tool, release, spec), tool, release, spec, timeout, memory,
                          (folder,) if folder else (), tuple(getattr(module, "SHIMS", ())) if folder else ())
            if error:
                out.failed[job.key] = (job, error)
            else:
                out.jobs.append(job)
    return out


def error_records(job: ToolJob, reason: str) -> list[Record]:
    from .runner import stamp

    module = adapters.get(job.tool)
    rec = Record(job.spec.name, module.FRAMEWORK, job.tool, job.release, MODEL_LEVEL, "", "compute", "", None,
                 ERROR, reason)
    return stamp([rec], job.spec)


@dataclass
class Summary:
    total: int
    skipped: int  # already in the store
    ran: int
    failed: int  # Failed results (worker died twice, node lost)
    dropped: int  # results another driver had written first
    batches: int


Progress = Callable[[int, int, ToolJob, JobResult | Failed], None]


def sweep(jobs: Sequence[ToolJob], out_dir: "str | Path", engine: Engine,
          failed: Optional[dict[str, tuple[ToolJob, str]]] = None, progress: Optional[Progress] = None,
          batch_jobs: Optional[int] = None) -> Summary:
    """Run every job the store does not hold yet on `engine`, writing each result once; jobs that cannot run
    (`failed`: a release that did not install) are written as error rows."""
    store = Store(out_dir)
    done = store.done_keys()
    writer = store.writer(engine.name, **({"batch_jobs": batch_jobs} if batch_jobs else {}))
    by_key = {job.key: job for job in jobs}
    if len(by_key) != len(jobs):
        raise UserError("two jobs of the sweep have the same key (a model listed twice under two names?)")
    counts = {"ran": 0, "failed": 0}
    todo = [(job.key, job) for job in jobs if job.key not in done]
    for key, (job, reason) in (failed or {}).items():
        if key not in done:
            writer.add(key, error_records(job, reason), job.release)

    def on_result(key: str, result) -> None:
        job = by_key[key]
        counts["ran"] += 1
        if isinstance(result, Failed):
            counts["failed"] += 1
            writer.add(key, error_records(job, result.reason), job.release, engine.name)
        else:
            writer.add(key, result.records, job.release, result.host, result.cpu_s, result.wall_s)
        if progress:
            progress(counts["ran"], len(todo), job, result)

    try:
        if todo:
            engine.run(run_tool_job, todo, on_result,
                       warm=functools.partial(warm, registries_of(job.spec for _, job in todo)))
    finally:
        writer.close()
    return Summary(len(jobs) + len(failed or {}), len(jobs) - len(todo), counts["ran"], counts["failed"],
                   writer.dropped, writer.batches)
