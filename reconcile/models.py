"""What the user asked to count, resolved into loadable forms. One model-spec grammar (README "Model specs"):

    lenet                                   a reference model (reference_models/__init__.py)
    path/to/net.prototxt                    a Caffe prototxt
    path/to/file.py:FACTORY                 FACTORY() returns a torch nn.Module (needs an input shape)
    module:PACKAGE.MODULE:FACTORY[?k=v&...] any importable factory, called with the query as keyword arguments
    hf:MODEL_TYPE[?k=v&...]                 a `transformers` configuration class (AutoConfig.for_model) built
                                            with from_config: no weights, no download
    preset:NAME[?k=v&...]                   a published architecture (reference_models/presets.py)
    tv:NAME                                 a torchvision builder (weights not loaded), where torchvision imports
    timm:NAME[?k=v&...]                     a timm model (pretrained=False), the query as create_model arguments

Query values are read as int, float, true/false, a comma-separated list of numbers (`depths=2,2,18,2`), else
text. Reserved keys: `head` (hf/preset: causal-lm, masked-lm, image-classification, base), `attn_implementation`
(eager, sdpa), `experts_implementation` (eager, grouped_mm, batched_mm), `sizes` (default, or small: the
small-config rule of reconcile/hf_specs.py; layers: its depth part), `inputs` (more inputs made from the
configuration: pixel_values, input_ids, grid_thw, ...), `device` (meta or cpu; default meta above ~1e9 parameters),
`input_shape` (module/file/tv/timm specs: 1,3,224,224 or 1x3x224x224). A spec that is not a reference model is
named after its text in every output (`--model-file nets/lenet.py:build` is the model `nets/lenet.py:build`, never
the reference `lenet`); its files are named by reconcile.identity. All bad input becomes a UserError here, before
any tool runs, so the CLI can print one line and exit 2.

A user's file is checked statically here (it parses, it defines FACTORY at top level; read as a regular file of
bounded size): its code, import-time code included, runs only in job processes (reconcile.runner), never in the
process that resolves it. A `module:` spec's module is located without importing it or its parent packages
(factories.locate_module).

`--input-shape` rules (INPUT_SHAPE_RULES, also in the CLI help): a model file needs it (the shape its forward
takes, batch first, at least 2 dimensions); for a reference model it replaces the model's own shape and must have
the same number of dimensions (no padding, no unbatched inputs); a prototxt declares its own input, so it is
refused there; a token model takes B,T.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, Optional

import reference_models
from conventions.ir import Model

from . import names
from .errors import OutOfMemory, UserError
from .factories import load_factory, locate_module  # noqa: F401  (apart so front ends need not import this module)
from .hf_specs import from_transformers, on_meta
from .memory import is_out_of_memory, out_of_memory_text
from .spec import (HF_REGISTRY, INPUT_SHAPE_RULES, MAX_INPUT_ELEMENTS, TIMM_REGISTRY,  # noqa: F401
                   TORCHVISION_REGISTRY, ModelSpec, _shape_option, _split_query, _with_batch, check_shape,
                   parse_query, parse_shape, registry_of)
from .validate import optional_count


def is_path_spec(text: str) -> bool:
    """PATH.py:FACTORY[?query] (a ':' in the query does not count)."""
    base = text.partition("?")[0]
    return ":" in base and base.rpartition(":")[0].endswith(".py")


def reference(name: str, batch: Optional[int] = None) -> ModelSpec:
    if registry_of(name) or name.startswith("module:") or is_path_spec(name):
        return resolve(name, batch=batch)  # callers that size reference models by batch accept every spec
    try:
        ref = reference_models.get(name)
    except UserError as exc:
        from reference_models.presets import PRESETS

        # `vit` meant as hf:vit, `gpt3-175b` as preset:gpt3-175b
        forms = names.spec_forms(name, list(PRESETS) + [a for p in PRESETS.values() for a in p.aliases])
        text = str(exc) if not forms else (f"unknown model {name!r}"
                                           f"{names.suggestion(names.close(name, reference_models.MODELS) + forms)}"
                                           f"; reference models: {', '.join(reference_models.MODELS)}")
        raise UserError(f"{text}; or a spec: PATH.py:FACTORY, module:PACKAGE.MODULE:FACTORY, hf:MODEL_TYPE, "
                        f"preset:NAME (reconcile formulas --help; reconcile models --presets)") from None
    shape = ref.input_shape if batch is None else (batch,) + ref.input_shape[1:]
    if batch is not None:
        check_shape(shape, ",".join(map(str, shape)))
    return ModelSpec(ref.name, shape, ref.torch, ref.keras, ref.prototxt_path, ref.aliases)


def with_input_shape(spec: ModelSpec, text: str) -> ModelSpec:
    """A reference model at another input shape: same number of dimensions (see INPUT_SHAPE_RULES)."""
    if spec.prototxt is not None and not spec.torch_factory and not spec.keras_factory:
        raise UserError(f"--input-shape does not apply to a prototxt ({spec.name} declares its own input); "
                        "edit its input_shape instead")
    shape = parse_shape(text)
    if len(shape) != len(spec.input_shape):
        raise UserError(f"--input-shape {text}: model {spec.name!r} takes a {len(spec.input_shape)}-D input like "
                        f"{','.join(map(str, spec.input_shape))}, not {len(shape)}-D")
    return ModelSpec(spec.name, shape, spec.torch_factory, spec.keras_factory, spec.prototxt, spec.aliases)


def _defines(tree: ast.Module, name: str) -> bool:
    """Whether a module's top level binds `name` (def, class, assignment, import), or may (`import *`)."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return True
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for target in targets for t in ast.walk(target)):
                return True
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*" or (alias.asname or alias.name.split(".")[0]) == name:
                    return True
        if isinstance(node, (ast.If, ast.Try, ast.With)):  # conditional definitions: look one level in
            inner = ast.Module(body=[n for n in ast.walk(node) if n is not node and isinstance(n, ast.stmt)],
                               type_ignores=[])
            if _defines(inner, name):
                return True
    return False


def check_model_file(path: Path, factory: str) -> None:
    """PATH.py parses and defines FACTORY at top level: checked without running the file."""
    from .identity import read_bounded

    try:
        source = read_bounded(path)
    except OSError as exc:
        raise UserError(f"--model-file: cannot read {path} ({exc.strerror or exc})") from None
    try:
        tree = ast.parse(source, filename=str(path))
    except (SyntaxError, ValueError) as exc:
        where = f" (line {exc.lineno})" if getattr(exc, "lineno", None) else ""
        raise UserError(f"importing {path} failed: {type(exc).__name__}: "
                        f"{getattr(exc, 'msg', None) or exc}{where}") from None
    except (RecursionError, MemoryError):
        raise UserError(f"importing {path} failed: the file is too deeply nested to parse") from None
    if not _defines(tree, factory):
        raise UserError(f"{path} has no callable {factory!r} (no top-level def, class or assignment of it)")


def from_model_file(model_file: str, input_shape: Optional[str]) -> ModelSpec:
    path_text, sep, factory = model_file.rpartition(":")
    if not sep or not path_text.endswith(".py") or not factory.isidentifier():
        raise UserError(f"--model-file {model_file!r}: expected PATH.py:FACTORY")
    path = Path(path_text)
    if not path.is_file():
        raise UserError(f"--model-file: no such file {path_text}")
    if input_shape is None:
        raise UserError("--model-file needs --input-shape N,C,H,W")
    shape = parse_shape(input_shape, "--input-shape")
    if len(shape) < 2:
        raise UserError(f"--input-shape {input_shape}: a model file's input needs a batch dimension first "
                        "(at least 2 dimensions, e.g. 1,3,32,32 or 1,784)")
    check_model_file(path, factory)  # fail now, with a clear message, without running the file
    return ModelSpec(model_file.strip(), shape, torch_factory=f"{path.resolve()}:{factory}")


def from_prototxt(path_text: str) -> ModelSpec:
    path = Path(path_text)
    if not path.is_file():
        raise UserError(f"no such prototxt file {path_text}")
    from .frontends import prototxt

    model = prototxt.load(path)  # raises UserError with line and reason on malformed text
    return ModelSpec(path_text, model.input_shape, prototxt=path.resolve())


def resolve(model: Optional[str], model_file: Optional[str] = None, input_shape: Optional[str] = None,
            batch: Optional[int] = None, seq_len: Optional[int] = None, trace: bool = False) -> ModelSpec:
    """Any model spec (module docstring) -> ModelSpec. `batch` and `seq_len` size a token model's input
    (defaults: 1 and the configuration's maximum positions capped at DEFAULT_SEQ_CAP); `input_shape` overrides
    the whole input shape (B,T for token models). `trace`: an hf:/preset: model's layer IR is traced on the meta
    device by the job that resolves it (hf_specs.from_transformers), for the caller to find in
    cached_ir(hf_specs.on_meta(spec), "torch")."""
    if model_file:
        return from_model_file(model_file, input_shape)
    if model is None:
        raise UserError("name a model: a reference model, a .prototxt file, PATH.py:FACTORY, "
                        "module:PACKAGE.MODULE:FACTORY, hf:MODEL_TYPE or preset:NAME")
    batch, seq_len = optional_count(batch, "--batch"), optional_count(seq_len, "--seq-len")
    text = model.strip()
    registry = registry_of(text)
    if registry == HF_REGISTRY:
        traced: dict = {}
        spec = from_transformers(text, batch, seq_len, input_shape, layer_ir if trace else None, traced)
        if traced.get("ir") is not None:
            remember_ir(on_meta(spec), "torch", traced["ir"])
        return spec
    if registry in (TIMM_REGISTRY, TORCHVISION_REGISTRY):
        if seq_len is not None:
            raise UserError(f"--seq-len applies to token models (hf:, preset:), not {text!r}")
        from .zoo_specs import from_zoo

        return from_zoo(text, batch, input_shape)
    if seq_len is not None:
        raise UserError(f"--seq-len applies to token models (hf:, preset:), not {text!r}")
    if text.startswith("module:"):
        return from_module_spec(text, input_shape, batch)
    if text.endswith(".prototxt"):
        if input_shape is not None:
            raise UserError(f"--input-shape does not apply to a prototxt ({text} declares its own input); edit "
                            "its input_shape instead")
        return from_prototxt(text)
    if is_path_spec(text):
        return from_path_spec(text, input_shape, batch)
    spec = reference(text, batch)
    return with_input_shape(spec, input_shape) if input_shape is not None else spec


def from_module_spec(text: str, input_shape: Optional[str], batch: Optional[int] = None) -> ModelSpec:
    """module:PACKAGE.MODULE:FACTORY[?k=v&...]: the factory is called with the query as keyword arguments."""
    base, query = _split_query(text[len("module:"):])
    target = base.strip()
    module_name, sep, factory = target.rpartition(":")
    if not sep or not module_name or not factory:
        raise UserError(f"model spec {text!r}: expected module:PACKAGE.MODULE:FACTORY[?key=value&...]")
    shape = _with_batch(_shape_option(query, input_shape, text), batch)
    if not factory.isidentifier():
        raise UserError(f"model spec {text!r}: {factory!r} is not a Python name (module:PACKAGE.MODULE:FACTORY)")
    # located, not run: the module and its parent packages (their __init__ too) run in job processes only
    found = locate_module(module_name)
    if found is None:
        raise UserError(f"model spec {text!r}: no installed module {module_name!r}")
    if found.has_location and found.origin and found.origin.endswith(".py"):
        check_model_file(Path(found.origin), factory)  # "has no callable", read from the source
    return ModelSpec(text, shape, torch_factory=target, factory_kwargs=tuple(sorted(query.items())))


def from_path_spec(text: str, input_shape: Optional[str], batch: Optional[int] = None) -> ModelSpec:
    """PATH.py:FACTORY[?k=v&...] given as a model name (not --model-file): named after the text."""
    base, query = _split_query(text)
    path_text, _, factory = base.rpartition(":")
    path = Path(path_text)
    if not path.is_file():
        raise UserError(f"no such file {path_text}")
    shape = _with_batch(_shape_option(query, input_shape, text), batch)
    check_model_file(path, factory)  # without running the file: its code runs only in job processes
    return ModelSpec(text, shape, torch_factory=f"{path.resolve()}:{factory}",
                     factory_kwargs=tuple(sorted(query.items())))


def llm_shapes(spec: ModelSpec):
    """The transformer shapes conventions/llm.py computes from (None for a model that is not a token model)."""
    from conventions import llm

    if not spec.token_model or not spec.config:
        return None
    batch, seq_len = spec.input_shape[0], spec.input_shape[-1]
    try:
        return llm.shapes_from_config(spec.config, seq_len, batch, spec.config.get("n_params", 0),
                                      spec.config.get("hf_non_embedding", 0))
    except ValueError:  # a configuration without a single width, depth or head count: no LLM conventions
        return None


def torch_module(spec: ModelSpec):
    """Build the torch nn.Module; a factory that raises or returns something else is the user's error."""
    import torch.nn as nn

    if not spec.torch_factory:
        raise UserError(f"model {spec.name!r} has no PyTorch definition")
    factory = load_factory(spec.torch_factory)
    try:
        module = factory(**dict(spec.factory_kwargs))
    except UserError:
        raise
    except Exception as exc:
        if is_out_of_memory(exc):
            raise OutOfMemory(out_of_memory_text(exc, f"model {spec.name!r}: its factory")) from None
        raise UserError(f"factory {spec.torch_factory.rpartition(':')[2]!r} raised {type(exc).__name__}: {exc}") \
            from None
    if not isinstance(module, nn.Module):
        raise UserError(f"factory {spec.torch_factory!r} returned {type(module).__name__}, not a torch nn.Module")
    return module.eval()


class MetaDeviceError(UserError):
    """A tool that needs real tensors was given a model built on the meta device."""


def module_device(module):
    """The device of the module's first parameter (or buffer); cpu for a module without either."""
    import torch

    for tensor in list(module.parameters())[:1] or list(module.buffers())[:1]:
        return tensor.device
    return torch.device("cpu")


def example_input(spec: ModelSpec, module=None, tool: Optional[str] = None, dispatch_level: bool = False):
    """The one input every adapter feeds a model: int64 token ids (zeros) of shape (batch, seq_len) for a token
    model, float zeros of the input shape otherwise, on the module's own device.

    A module on the meta device holds no values: only tools that count at the dispatcher from shapes
    (`dispatch_level=True`: FlopCounterMode; not ptflops' aten backend, whose dispatch mode runs the ops and so
    hits transformers' `.item()` calls) can run on it. Any other tool gets a
    MetaDeviceError naming the model and the tool, which the runner turns into that job's status row."""
    import torch

    device = module_device(module) if module is not None else torch.device("meta" if spec.meta else "cpu")
    if device.type == "meta" and not dispatch_level:
        who = f"{tool} " if tool else "this tool "
        raise MetaDeviceError(f"model {spec.name!r} is built on the meta device ({spec.config.get('n_params', 0):,} "
                              f"parameters, no memory for weights): {who}needs real tensors; the formulas and the "
                              f"dispatch-level tools (torch_flop_counter) count it")
    if spec.token_model:
        return torch.zeros(*spec.input_shape, dtype=torch.long, device=device)
    return torch.zeros(*spec.input_shape, device=device)


def input_dtype(spec: ModelSpec):
    import torch

    return torch.long if spec.token_model else None


def check_forward(module, spec: ModelSpec) -> None:
    """Run one forward pass so a wrong input shape is reported as such, not as a tool crash."""
    import torch

    try:
        with torch.no_grad():
            module(example_input(spec, module, dispatch_level=True))
    except Exception as exc:
        if is_out_of_memory(exc):  # the job's memory cap (or the machine's), not the input shape
            shape = ",".join(map(str, spec.input_shape))
            raise OutOfMemory(out_of_memory_text(exc, f"model {spec.name!r}: its forward on input shape {shape}")) \
                from None
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"model {spec.name!r} does not accept input shape "
                        f"{','.join(map(str, spec.input_shape))}: {first}") from None


# Layer IRs already traced in this process, or inherited from the worker that forked it (reconcile.runner traces
# each model once per run, in a job process, before the tool jobs of that model).
_IR_CACHE: dict[tuple, Model] = {}


def ir_key(spec: ModelSpec, framework: str) -> tuple:
    """The spec and the content of its files (identity.source_hash): a model file edited between two calls in one
    process is traced again."""
    from .identity import identify

    return (spec.name, spec.input_shape, spec.torch_factory, spec.keras_factory, str(spec.prototxt),
            tuple(sorted((k, tuple(sorted(v.items()))) for k, v in spec.aliases.items())), framework,
            identify(spec).source_hash)


def remember_ir(spec: ModelSpec, framework: str, model: Model) -> None:
    _IR_CACHE[ir_key(spec, framework)] = model


def cached_ir(spec: ModelSpec, framework: str) -> Optional[Model]:
    return _IR_CACHE.get(ir_key(spec, framework))


# Why a model could not be traced (its factory or forward raised, hung or died), so that it is not traced again.
IR_FAILURES: dict[tuple, tuple[str, float]] = {}  # (why, the timeout it had)


def forget_irs(spec: ModelSpec) -> None:
    """Drop a model's cached IRs and failures (an in-memory module re-registered under the same name)."""
    for cache in (_IR_CACHE, IR_FAILURES):
        for key in [k for k in cache if k[:6] == ir_key(spec, "")[:6]]:
            del cache[key]


def canonical_framework(spec: ModelSpec) -> Optional[str]:
    """The form terms are computed on: PyTorch's if the model has one, else Caffe's, else Keras'."""
    return next((f for f in ("torch", "caffe", "keras") if f in spec.frameworks), None)


def layer_ir(spec: ModelSpec, framework: str = "torch") -> Model:
    """The layer IR of a model as one framework sees it (runs the model's code: call it in a job process)."""
    cached = cached_ir(spec, framework)
    if cached is not None:
        return cached
    if framework == "torch":
        from .frontends import torch_ir

        module = torch_module(spec)
        check_forward(module, spec)
        aliases = spec.aliases.get("torch", {})
        return torch_ir.from_module(module, spec.input_shape, spec.name, aliases, input_dtype=input_dtype(spec))
    if framework == "caffe":
        if spec.prototxt is None:
            raise UserError(f"model {spec.name!r} has no Caffe prototxt")
        from .frontends import prototxt

        return prototxt.load(spec.prototxt, name=spec.name)
    if framework == "keras":
        if not spec.keras_factory:
            raise UserError(f"model {spec.name!r} has no Keras twin")
        from .frontends import keras_ir

        return keras_ir.from_factory(spec.keras_factory, spec.input_shape, spec.name, spec.aliases.get("keras", {}))
    raise UserError(f"unknown framework {framework!r}: torch, keras or caffe")


def specs_from_records(records, resolved: Optional[dict[str, ModelSpec]] = None) \
        -> tuple[dict[str, ModelSpec], dict[str, str]]:
    """The specs loaded records were counted on, from their identity columns (records.py): each model at the
    input shape it ran at, if its source hash is still that of its spec here. Returns (name -> spec, name -> why
    there is none: a spec that no longer resolves, or sources that changed since). Records without the columns
    (written before them) give nothing: callers fall back to the model's own spec. `resolved`: specs the caller
    resolved already (many in one job), used where their input shape is the one the records ran at."""
    from .identity import identify

    specs: dict[str, ModelSpec] = {}
    stale: dict[str, str] = {}
    if not {"input_shape", "source_hash"} <= set(records.columns):
        return specs, stale
    seen = records[["model", "input_shape", "source_hash"]].drop_duplicates()
    for name, group in seen.groupby("model", sort=False):
        shapes, hashes = set(group["input_shape"]) - {""}, set(group["source_hash"]) - {""}
        if len(shapes) != 1 or len(hashes) != 1:
            continue
        shape = shapes.pop()
        spec = (resolved or {}).get(name)
        if spec is None or "x".join(map(str, spec.input_shape)) != shape:
            try:
                spec = resolve(name) if name.endswith(".prototxt") else \
                    resolve(name, input_shape=shape.replace("x", ","))
            except UserError as exc:
                stale[name] = f"its spec does not resolve here ({exc})"
                continue
        if identify(spec).source_hash != hashes.pop():
            stale[name] = "its sources changed since these records were made"
            continue
        specs[name] = spec
    return specs, stale
