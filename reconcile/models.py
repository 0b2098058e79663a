"""What the user asked to count, resolved into loadable forms: a reference model name, a user's
`FILE.py:FACTORY` with an input shape, or a Caffe `.prototxt`. All bad input becomes a UserError here, before
any tool runs, so the CLI can print one line and exit 2.

A user's file is checked statically here (it parses, it defines FACTORY at top level): its code, import-time
code included, runs only in job processes (reconcile.runner), never in the process that resolves it.

`--input-shape` rules (INPUT_SHAPE_RULES, also in the CLI help): a model file needs it (the shape its forward
takes, batch first, at least 2 dimensions); for a reference model it replaces the model's own shape and must have
the same number of dimensions (no padding, no unbatched inputs); a prototxt declares its own input, so it is
refused there.
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import reference_models
from conventions.ir import Model

from .errors import UserError

INPUT_SHAPE_RULES = ("--input-shape: required with --model-file (the shape its forward takes, batch first, at "
                     "least 2 dimensions); for a reference model it replaces the model's own shape and must have "
                     "its number of dimensions; refused for a .prototxt (it declares its own input)")
MAX_INPUT_ELEMENTS = 2 ** 31  # 8 GB of float32: beyond it an input shape is a typo, not a model


@dataclass(frozen=True)
class ModelSpec:
    name: str
    input_shape: tuple[int, ...]  # channels-first with batch
    torch_factory: Optional[str] = None  # "package.module:function" or "/path/file.py:function"
    keras_factory: Optional[str] = None
    prototxt: Optional[Path] = None
    aliases: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def frameworks(self) -> tuple[str, ...]:
        return tuple(f for f, v in (("torch", self.torch_factory), ("keras", self.keras_factory),
                                    ("caffe", self.prototxt)) if v)


def check_shape(shape: tuple[int, ...], text: str) -> tuple[int, ...]:
    if math.prod(shape) > MAX_INPUT_ELEMENTS:
        raise UserError(f"input shape {text}: {math.prod(shape):,} elements, more than the {MAX_INPUT_ELEMENTS:,} "
                        "this harness accepts")
    return shape


def parse_shape(text: str) -> tuple[int, ...]:
    parts = text.split(",")
    shape: tuple[int, ...] = ()
    if len(parts) <= 16 and all(p.strip().isdigit() and len(p.strip()) <= 12 for p in parts):
        shape = tuple(int(part) for part in parts)
    if not shape or any(d <= 0 for d in shape):
        raise UserError(f"malformed input shape {text!r}: expected positive integers like 1,3,32,32")
    return check_shape(shape, text)


def reference(name: str, batch: Optional[int] = None) -> ModelSpec:
    ref = reference_models.get(name)
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
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise UserError(f"--model-file: cannot read {path} ({exc.strerror})") from None
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
    shape = parse_shape(input_shape)
    if len(shape) < 2:
        raise UserError(f"--input-shape {input_shape}: a model file's input needs a batch dimension first "
                        "(at least 2 dimensions, e.g. 1,3,32,32 or 1,784)")
    check_model_file(path, factory)  # fail now, with a clear message, without running the file
    return ModelSpec(path.stem, shape, torch_factory=f"{path.resolve()}:{factory}")


def from_prototxt(path_text: str) -> ModelSpec:
    path = Path(path_text)
    if not path.is_file():
        raise UserError(f"no such prototxt file {path_text}")
    from .frontends import prototxt

    model = prototxt.load(path)  # raises UserError with line and reason on malformed text
    return ModelSpec(path.stem, model.input_shape, prototxt=path.resolve())


def resolve(model: Optional[str], model_file: Optional[str] = None, input_shape: Optional[str] = None) -> ModelSpec:
    if model_file:
        return from_model_file(model_file, input_shape)
    if model is None:
        raise UserError("name a reference model, a .prototxt file, or --model-file PATH.py:FACTORY")
    if model.endswith(".prototxt"):
        if input_shape is not None:
            raise UserError(f"--input-shape does not apply to a prototxt ({model} declares its own input); edit "
                            "its input_shape instead")
        return from_prototxt(model)
    spec = reference(model)
    return with_input_shape(spec, input_shape) if input_shape is not None else spec


def load_factory(target: str) -> Callable[..., Any]:
    module_text, _, attr = target.rpartition(":")
    if module_text.endswith(".py"):
        path = Path(module_text)
        mod_name = f"_reconcile_user_{path.stem}"
        spec = importlib.util.spec_from_file_location(mod_name, path)
        if spec is None or spec.loader is None:
            raise UserError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise UserError(f"importing {path} failed: {type(exc).__name__}: {exc}") from None
    else:
        module = importlib.import_module(module_text)
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise UserError(f"{module_text} has no callable {attr!r}")
    return factory


def torch_module(spec: ModelSpec):
    """Build the torch nn.Module; a factory that raises or returns something else is the user's error."""
    import torch.nn as nn

    if not spec.torch_factory:
        raise UserError(f"model {spec.name!r} has no PyTorch definition")
    factory = load_factory(spec.torch_factory)
    try:
        module = factory()
    except Exception as exc:
        raise UserError(f"factory {spec.torch_factory.rpartition(':')[2]!r} raised {type(exc).__name__}: {exc}") \
            from None
    if not isinstance(module, nn.Module):
        raise UserError(f"factory {spec.torch_factory!r} returned {type(module).__name__}, not a torch nn.Module")
    return module.eval()


def check_forward(module, spec: ModelSpec) -> None:
    """Run one forward pass so a wrong input shape is reported as such, not as a tool crash."""
    import torch

    try:
        with torch.no_grad():
            module(torch.zeros(*spec.input_shape))
    except MemoryError:
        raise UserError(f"model {spec.name!r}: its forward ran out of memory on input shape "
                        f"{','.join(map(str, spec.input_shape))}") from None
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"model {spec.name!r} does not accept input shape "
                        f"{','.join(map(str, spec.input_shape))}: {first}") from None


# Layer IRs already traced in this process, or inherited from the worker that forked it (reconcile.runner traces
# each model once per run, in a job process, before the tool jobs of that model).
_IR_CACHE: dict[tuple, Model] = {}


def ir_key(spec: ModelSpec, framework: str) -> tuple:
    return (spec.name, spec.input_shape, spec.torch_factory, spec.keras_factory, str(spec.prototxt),
            tuple(sorted((k, tuple(sorted(v.items()))) for k, v in spec.aliases.items())), framework)


def remember_ir(spec: ModelSpec, framework: str, model: Model) -> None:
    _IR_CACHE[ir_key(spec, framework)] = model


def cached_ir(spec: ModelSpec, framework: str) -> Optional[Model]:
    return _IR_CACHE.get(ir_key(spec, framework))


# Why a model could not be traced (its factory or forward raised, hung or died), so that it is not traced again.
IR_FAILURES: dict[tuple, str] = {}


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
        return torch_ir.from_module(module, spec.input_shape, spec.name, spec.aliases.get("torch", {}))
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
