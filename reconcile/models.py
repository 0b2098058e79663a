"""What the user asked to count, resolved into loadable forms: a reference model name, a user's
`FILE.py:FACTORY` with an input shape, or a Caffe `.prototxt`. All bad input becomes a UserError here, before
any tool runs, so the CLI can print one line and exit 2."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import reference_models
from conventions.ir import Model

from .errors import UserError
from .factories import load_factory  # noqa: F401  (lives apart so the front ends need not import this module)


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


def parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if not shape or any(d <= 0 for d in shape):
        raise UserError(f"malformed input shape {text!r}: expected positive integers like 1,3,32,32")
    return shape


def reference(name: str, batch: Optional[int] = None) -> ModelSpec:
    ref = reference_models.get(name)
    shape = ref.input_shape if batch is None else (batch,) + ref.input_shape[1:]
    return ModelSpec(ref.name, shape, ref.torch, ref.keras, ref.prototxt_path, ref.aliases)


def from_model_file(model_file: str, input_shape: Optional[str]) -> ModelSpec:
    path_text, sep, factory = model_file.rpartition(":")
    if not sep or not path_text.endswith(".py") or not factory:
        raise UserError(f"--model-file {model_file!r}: expected PATH.py:FACTORY")
    path = Path(path_text)
    if not path.is_file():
        raise UserError(f"--model-file: no such file {path_text}")
    if input_shape is None:
        raise UserError("--model-file needs --input-shape N,C,H,W")
    spec = ModelSpec(path.stem, parse_shape(input_shape), torch_factory=f"{path.resolve()}:{factory}")
    load_factory(spec.torch_factory)  # fail now, with a clear message, if FACTORY is absent
    return spec


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
        return from_prototxt(model)
    spec = reference(model)
    if input_shape is not None:
        spec = ModelSpec(spec.name, parse_shape(input_shape), spec.torch_factory, spec.keras_factory,
                         spec.prototxt, spec.aliases)
    return spec


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
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"model {spec.name!r} does not accept input shape "
                        f"{','.join(map(str, spec.input_shape))}: {first}") from None


def layer_ir(spec: ModelSpec, framework: str = "torch") -> Model:
    """The layer IR of a model as one framework sees it."""
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
