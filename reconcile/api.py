"""The Python API behind the CLI: run tools on models and get the long table as a pandas DataFrame."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional, Sequence

import pandas as pd

import reference_models

from . import adapters, models
from .errors import UserError
from .records import COLUMNS, Record
from .render import to_csv, write_atomic  # noqa: F401  (public here since the first release)
from .runner import DEFAULT_TIMEOUT_S, Job, Progress, run_jobs

_IN_MEMORY: dict[str, object] = {}


def _split(value: "str | Sequence[str] | None") -> Optional[list[str]]:
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value)


def register_module(module, input_shape: Sequence[int], name: str = "user_model") -> models.ModelSpec:
    """A user's own nn.Module as a ModelSpec. Jobs run in forked children, which inherit the object."""
    _IN_MEMORY[name] = module
    return models.ModelSpec(name, tuple(int(d) for d in input_shape), torch_factory=f"{__name__}:_in_memory_{name}")


def __getattr__(attr: str):
    if attr.startswith("_in_memory_") and attr[len("_in_memory_"):] in _IN_MEMORY:
        module = _IN_MEMORY[attr[len("_in_memory_"):]]
        return lambda: module
    raise AttributeError(attr)


def plan(models_: "str | Sequence[str] | None" = None, tools: "str | Sequence[str] | None" = None,
         specs: Iterable[models.ModelSpec] = (), batch: Optional[int] = None) -> list[Job]:
    """Validate names (a UserError before anything runs) and list the jobs, model-major."""
    tool_names = _split(tools) or list(adapters.TOOLS)
    for tool in tool_names:
        adapters.get(tool)
    chosen = list(specs)
    names = _split(models_)
    if names is None and not chosen:
        names = list(reference_models.DEFAULT_SUITE)
    for name in names or []:
        chosen.append(models.resolve(name) if batch is None or name.endswith(".prototxt")
                      else models.reference(name, batch))
    if not chosen:
        raise UserError("no models to run")
    return [Job(tool, spec) for spec in chosen for tool in tool_names]


def run(models: "str | Sequence[str] | None" = None, tools: "str | Sequence[str] | None" = None,
        module=None, input_shape: "Sequence[int] | str | None" = None, name: str = "user_model",
        batch: Optional[int] = None, timeout: float = DEFAULT_TIMEOUT_S,
        progress: Optional[Progress] = None, model_file: Optional[str] = None) -> pd.DataFrame:
    """Run counters on models and return the records as a DataFrame (columns: records.COLUMNS).

    `models`: reference model names (default: the whole suite) or .prototxt paths; `module` + `input_shape`:
    your own nn.Module instead; `model_file` "PATH.py:FACTORY" + `input_shape` "N,C,H,W": a factory in a file.
    `tools`: tool ids (default: all). `records.attrs["specs"]`: each model's spec (its input shape)."""
    specs = []
    if batch is not None and batch <= 0:
        raise UserError(f"--batch must be positive, not {batch}")
    if model_file is not None:
        shape = input_shape if input_shape is None or isinstance(input_shape, str) else \
            ",".join(str(int(d)) for d in input_shape)
        specs.append(models.from_model_file(model_file, shape))
    elif module is not None:
        if input_shape is None:
            raise UserError("a module needs input_shape, e.g. (1, 3, 224, 224)")
        specs.append(register_module(module, input_shape, name))
    jobs = plan(models, tools, specs, batch)
    df = frame(run_jobs(jobs, timeout, progress))
    # the explain step needs each model's input shape (batch!) to compute its terms
    df.attrs["specs"] = {job.spec.name: job.spec for job in jobs}
    return df


def frame(records: Iterable[Record]) -> pd.DataFrame:
    records = list(records)
    df = pd.DataFrame([r.row() for r in records], columns=COLUMNS)
    # object dtype keeps integer counts integral next to empty values (a float column would print 288000.0)
    df["value"] = pd.Series([r.value for r in records], dtype=object, index=df.index)
    return df


# ------------------------------------------------------------------------------------------------ listings
_PINNED_AS = {"tf_profiler": "tensorflow-cpu", "torch_flop_counter": "torch"}  # tools that ship inside a framework
_READS = {"torch": "a torch nn.Module (forward hooks or a trace)", "keras": "the Keras twin of the model",
          "caffe": "a Caffe prototxt", "ir": "the layer IR (the reference document's formulas)"}
CONSTRAINTS = Path(__file__).resolve().parent.parent / "constraints.txt"


def pins(path: Path = CONSTRAINTS) -> dict[str, str]:
    """constraints.txt as {distribution (normalised): version}."""
    import re

    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+)", line)
        if match:
            out[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return out


def list_tools() -> pd.DataFrame:
    """One row per counting tool: id, installed version, pinned version, what it reads."""
    import re

    pinned = pins()
    rows = []
    for tool in adapters.TOOLS:
        module = adapters.get(tool)
        dist = getattr(module, "DISTRIBUTION", None) or _PINNED_AS.get(tool, "")
        try:
            installed = module.unavailable() or module.version()
        except Exception as exc:  # an adapter whose tool is broken here: say so, list the others
            installed = f"cannot tell ({type(exc).__name__})"
        pin = pinned.get(re.sub(r"[-_.]+", "-", dist).lower(), "") if dist else ""
        rows.append({"tool": tool, "installed": installed,
                     "pinned": f"{dist}=={pin}" if pin else ("(in the repository)" if not dist else ""),
                     "reads": _READS.get(module.FRAMEWORK, module.FRAMEWORK)})
    return pd.DataFrame(rows, columns=["tool", "installed", "pinned", "reads"])


# Other sources of models (presets) register a function returning rows like reference models' here.
MODEL_LISTERS: list = []


def list_models() -> pd.DataFrame:
    """One row per reference model (and preset): name, input shape, forms, default suite or not, what it pins
    down."""
    rows = [{"model": m.name, "input_shape": "x".join(map(str, m.input_shape)), "forms": ",".join(m.frameworks),
             "default_suite": "yes" if m.name in reference_models.DEFAULT_SUITE else "no",
             "pins_down": m.description} for m in reference_models.MODELS.values()]
    for lister in MODEL_LISTERS:
        rows += list(lister())
    return pd.DataFrame(rows, columns=["model", "input_shape", "forms", "default_suite", "pins_down"])
