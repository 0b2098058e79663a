"""A model spec resolved: the ModelSpec record every front end, adapter and cache key reads, and the grammar
helpers shared by every spec form (input shapes, `?key=value` queries). The forms themselves live in
reconcile.models (reference names, files, module:) and reconcile.hf_specs (hf:, preset:)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

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




# ------------------------------------------------------------------------------------------ spec grammar helpers
def parse_query(text: str, spec_text: str) -> dict[str, Any]:
    """'a=1&b=0.5&c=true&d=gelu' -> {'a': 1, 'b': 0.5, 'c': True, 'd': 'gelu'}."""
    out: dict[str, Any] = {}
    for part in filter(None, text.split("&")):
        key, sep, raw = part.partition("=")
        if not sep or not key.strip():
            raise UserError(f"model spec {spec_text!r}: expected key=value after '?', got {part!r}")
        out[key.strip()] = _query_value(raw.strip())
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
    if input_shape is not None:
        return parse_shape(input_shape)
    if given is None:
        raise UserError(f"{spec_text!r} needs an input shape: --input-shape N,C,H,W or ?input_shape=N,C,H,W")
    return parse_shape(str(given))


def _with_batch(shape: tuple[int, ...], batch: Optional[int]) -> tuple[int, ...]:
    return shape if batch is None else (batch,) + shape[1:]
