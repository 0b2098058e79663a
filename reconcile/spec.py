"""A model spec resolved: the ModelSpec record every front end, adapter and cache key reads, and the grammar
helpers shared by every spec form (input shapes, `?key=value` queries). The forms themselves live in
reconcile.models (reference names, files, module:) and reconcile.hf_specs (hf:, preset:)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .errors import UserError
from .validate import MAX_INPUT_ELEMENTS, check_shape, parse_shape  # noqa: F401  (the shared parsers)

# The model registries specs build from (the library a sweep worker imports before its jobs), by spec prefix.
HF_REGISTRY, TIMM_REGISTRY, TORCHVISION_REGISTRY = "hf", "timm", "torchvision"
REGISTRY_OF_PREFIX = {"hf:": HF_REGISTRY, "preset:": HF_REGISTRY, "timm:": TIMM_REGISTRY, "tv:": TORCHVISION_REGISTRY}


def registry_of(text: str) -> Optional[str]:
    """The registry a spec builds from (REGISTRY_OF_PREFIX), None for every other form."""
    return next((registry for prefix, registry in REGISTRY_OF_PREFIX.items() if text.strip().startswith(prefix)),
                None)


INPUT_SHAPE_RULES = ("--input-shape: required with --model-file (the shape its forward takes, batch first, at "
                     "least 2 dimensions); for a reference model it replaces the model's own shape and must have "
                     "its number of dimensions; refused for a .prototxt (it declares its own input)")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    input_shape: tuple[int, ...]  # channels-first with batch
    torch_factory: Optional[str] = None  # "package.module:function" or "/path/file.py:function"
    keras_factory: Optional[str] = None
    prototxt: Optional[Path] = None
    aliases: dict[str, dict[str, str]] = field(default_factory=dict)
    # Keyword arguments the torch factory is called with (module: query, hf:/preset: the configuration).
    factory_kwargs: tuple[tuple[str, Any], ...] = ()
    token_model: bool = False  # input is token ids (int64, shape batch x seq_len), not floats
    config: dict[str, Any] = field(default_factory=dict)  # hf:/preset: the configuration's own dict
    meta: bool = False  # built on the meta device (no memory for weights); only dispatch-level tools run
    note: str = ""  # what the spec stands for (a preset's citation and approximations)

    @property
    def frameworks(self) -> tuple[str, ...]:
        return tuple(f for f, v in (("torch", self.torch_factory), ("keras", self.keras_factory),
                                    ("caffe", self.prototxt)) if v)


# ------------------------------------------------------------------------------------------ spec grammar helpers
def parse_query(text: str, spec_text: str) -> dict[str, Any]:
    """'a=1&b=0.5&c=true&d=gelu&e=2,2,18,2' -> {'a': 1, 'b': 0.5, 'c': True, 'd': 'gelu', 'e': (2, 2, 18, 2)}:
    a comma-separated list of numbers is a tuple (a configuration's per-stage depths or widths)."""
    out: dict[str, Any] = {}
    for part in filter(None, text.split("&")):
        key, sep, raw = part.partition("=")
        if not sep or not key.strip():
            raise UserError(f"model spec {spec_text!r}: expected key=value after '?', got {part!r}")
        value = _query_value(raw.strip())
        if "," in raw:
            items = tuple(_query_value(v.strip()) for v in raw.split(","))
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
                value = items
        numbers = value if isinstance(value, tuple) else (value,)
        if any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
            raise UserError(f"model spec {spec_text[:120]!r}: {key.strip()}={raw.strip()} is not a finite number")
        out[key.strip()] = value
    return out


def _query_value(raw: str) -> Any:
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    if raw.lower() in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return raw


def _split_query(text: str) -> tuple[str, dict[str, Any]]:
    base, _, query = text.partition("?")
    return base, parse_query(query, text)


def _shape_option(query: dict[str, Any], input_shape: Optional[str], spec_text: str) -> tuple[int, ...]:
    given = query.pop("input_shape", None)
    if input_shape is None and given is None:
        raise UserError(f"{spec_text!r} needs an input shape: --input-shape N,C,H,W or ?input_shape=N,C,H,W")
    if isinstance(given, tuple):  # ?input_shape=1,3,8,8 reads as a list of numbers
        given = ",".join(map(str, given))
    text = input_shape if input_shape is not None else str(given)
    shape = parse_shape(text, "--input-shape" if input_shape is not None else "input_shape")
    if len(shape) < 2:
        raise UserError(f"input shape {text}: the input needs a batch dimension first (at least 2 dimensions, "
                        "e.g. 1,3,32,32 or 1,784)")
    return shape


def _with_batch(shape: tuple[int, ...], batch: Optional[int]) -> tuple[int, ...]:
    return shape if batch is None else (batch,) + shape[1:]


# --------------------------------------------------------------------------- checks of hf:/preset: specs (in their job)
def refuse_negative_counts(model_type: str, config_kwargs: dict[str, Any], text: str) -> None:
    """Settings whose default is a count (an int of 0 or more) take no negative value."""
    from .zoo_import import torchvision_first

    torchvision_first()
    from transformers import AutoConfig

    try:
        default = AutoConfig.for_model(model_type)
    except Exception:  # noqa: BLE001 (an unknown type is named by hf_config itself)
        return
    for key, value in config_kwargs.items():
        base = getattr(default, key, None)
        if isinstance(base, int) and not isinstance(base, bool) and base >= 0 and \
                isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise UserError(f"model spec {text[:200]!r}: {key} must be 0 or more ({type(default).__name__}'s "
                            f"default is {base}), not {value}")
