"""hf:/preset: specs resolved once and kept in the cache (cache.stored_spec): the first question on a model resolves
it in a job process (its configuration checked, the model built on the meta device, its input decided: the job
imports transformers, ~1-3 s), every later one reads the cache. Many specs resolve in one job, as a sweep or the
published-numbers table asks for them; with `trace`, that job traces each layer IR on the meta device too, kept
beside the spec."""
from __future__ import annotations

from typing import Optional, Sequence

from .errors import UserError
from .spec import HF_REGISTRY, ModelSpec, registry_of

# Seconds per spec of the one job that resolves a batch (and traces it, with `trace`); one spec alone has the
# timeout of any job a command starts (jobs.call_in_job), as a 175B preset built on the meta device may need.
RESOLVE_TIMEOUT_S = 30.0
SINGLE_TIMEOUT_S = 120.0


def request(text: str, seq_len: Optional[int] = None, input_shape: Optional[str] = None) -> tuple:
    """The key a resolved spec is kept under: its text and what sizes its input (no batch: the batch is applied
    after)."""
    return (text.strip(), None, seq_len, input_shape)


def is_kept(text: str) -> bool:
    """Built from a transformers configuration (hf:, preset:): resolving it needs a job."""
    return registry_of(text) == HF_REGISTRY


def resolve_kept(requests: Sequence[tuple], trace: bool = False) -> dict[tuple, ModelSpec]:
    """request -> its ModelSpec: from the cache, the others in one job process, then kept (with `trace`, their meta
    layer IRs as well, for models.cached_ir / cache.stored_ir to find). A spec that cannot be resolved raises its
    one line, as models.resolve does."""
    from . import cache
    from .hf_specs import on_meta
    from .jobs import call_in_job
    from .models import remember_ir

    requests = list(dict.fromkeys(requests))
    out = {r: cache.stored_spec(r) for r in requests}
    todo = [r for r, spec in out.items() if spec is None]
    if not todo:
        return out
    what = f"model spec {todo[0][0][:200]!r}" if len(todo) == 1 else f"resolving {len(todo)} model specs"
    results = call_in_job(_resolve_many, (todo, trace), what,
                          default_timeout=max(SINGLE_TIMEOUT_S, RESOLVE_TIMEOUT_S * len(todo)))
    for r, (state, value, ir) in zip(todo, results):
        if state == "error":
            raise UserError(value)
        cache.store_spec(r, value)
        if ir is not None:
            light = on_meta(value)
            remember_ir(light, "torch", ir)
            if cache.stored_ir(light, "torch") is None:
                cache.store_ir(light, "torch", ir, [])  # no user file: transformers is keyed by its version
        out[r] = value
    return out


def _resolve_many(requests: list[tuple], trace: bool) -> list[tuple[str, object, object]]:
    """In a job process: ("ok", spec, its meta layer IR or None) or ("error", its one line, None) per request; the
    first error ends the list (the caller raises it)."""
    from .hf_specs import from_transformers
    from .models import layer_ir

    out: list[tuple[str, object, object]] = []
    for text, batch, seq_len, input_shape in requests:
        traced: dict = {}
        try:
            spec = from_transformers(text, batch, seq_len, input_shape, layer_ir if trace else None, traced,
                                     probe_here=True)
        except UserError as exc:
            out.append(("error", str(exc), None))
            break
        out.append(("ok", spec, traced.get("ir")))
    return out
