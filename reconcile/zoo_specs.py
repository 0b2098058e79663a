"""tv:NAME[?device=meta] and timm:NAME[?k=v&...]: torchvision and timm builders, weights never loaded (README
"Model specs"); `device=meta` builds without memory for weights (the formulas and FlopCounterMode count shapes).

Both libraries are optional: they are used wherever they import (installed in the environment, or a folder on
PYTHONPATH). torchvision's own `import` registers fake (meta) kernels for its C++ ops in
`torchvision._meta_registrations`; a torchvision wheel built for another torch variant (a CUDA build beside
torch+cpu) has no such ops and that import fails with "operator torchvision::nms does not exist". The
classification builders use none of those ops, so when (and only when) that import fails, the module is replaced
by an empty one and the import retried (`import_torchvision`); the spec's note says so.

The input: torchvision's weights' own evaluation transform (`crop_size`, e.g. 299 for inception_v3, 384 for
vit_b_16's SWAG weights are separate entries: the builder's DEFAULT weights), timm's `pretrained_cfg`
`input_size`. The expected counts come from the same metadata: torchvision's `num_params` and `_ops` (read by the
sweep, reconcile/sweep.py).
"""
from __future__ import annotations

from typing import Any, Optional

from .errors import UserError
from .spec import ModelSpec, _split_query
from .zoo_import import _STUBBED, import_torchvision, stubbed, torchvision_first  # noqa: F401

TV = "tv"
TIMM = "timm"
FORMS = (TV, TIMM)
STUB_NOTE = (f"{_STUBBED} replaced by an empty module: this torchvision build's C++ ops are not registered for "
             "the installed torch; the classification builders do not use them")


def is_zoo_spec(text: str) -> bool:
    return text.partition(":")[0] in FORMS and ":" in text


def import_timm():
    import_torchvision()  # timm imports torchvision
    import timm

    return timm


def _available(form: str) -> Optional[str]:
    """Why the form's library cannot be used here (located without importing it), or None."""
    from .factories import locate_module

    module = "torchvision" if form == TV else "timm"
    if locate_module(module) is None:
        return (f"{form}: specs need {module}, which is not installed here (pip install {module}, or put a folder "
                "holding it on PYTHONPATH)")
    return None


# ------------------------------------------------------------------------------------------------ factories
def tv_weights(name: str):
    """The builder's DEFAULT weights entry (metadata only: nothing is downloaded), or None."""
    tv = import_torchvision()
    try:
        return tv.models.get_model_weights(name).DEFAULT
    except (ValueError, AttributeError, KeyError):
        return None


def _on(device: str, build):
    import torch

    if device == "meta":  # shapes only: no memory for weights, no time initialising them
        with torch.device("meta"):
            return build()
    torch.manual_seed(0)
    return build()


# Builder arguments torchvision sets from the weights' metadata when weights are given (and so not when they are
# not): a ViT's image_size (torchvision/models/vision_transformer.py _vision_transformer), MaxViT's input_size
# (maxvit.py _maxvit), both from meta["min_size"]. Set here from the DEFAULT weights so that the model built
# without them is the one the metadata describes (vit_h_14's DEFAULT weights are SWAG at 518 x 518).
_SIZE_FROM_WEIGHTS = (("vit_", "image_size", 0), ("maxvit_", "input_size", None))


# GoogLeNet with weights is built with its auxiliary classifiers and, the weights loaded, drops them unless the
# caller asked for them (googlenet.py googlenet(): `original_aux_logits = kwargs.get("aux_logits", False)`); built
# without weights it keeps GoogLeNet's own default, aux_logits=True. The metadata's num_params is the model without.
_AS_LOADED = {"googlenet": {"aux_logits": False}}


def weights_builder_kwargs(name: str, weights) -> dict[str, Any]:
    if weights is not None and name in _AS_LOADED:
        return dict(_AS_LOADED[name])
    if weights is None or "min_size" not in weights.meta:
        return {}
    for prefix, key, index in _SIZE_FROM_WEIGHTS:
        if name.startswith(prefix):
            size = weights.meta["min_size"]
            return {key: int(size[index]) if index is not None else tuple(int(v) for v in size)}
    return {}


def tv_model(name: str, device: str = "cpu", **kwargs):
    """torchvision.models.get_model(name, weights=None, **kwargs): random init (none on meta), no download."""
    tv = import_torchvision()
    return _on(device, lambda: tv.models.get_model(name, weights=None, **kwargs))


def timm_model(name: str, device: str = "cpu", **kwargs):
    """timm.create_model(name, pretrained=False, **kwargs): random init (none on meta), no download."""
    timm = import_timm()
    return _on(device, lambda: timm.create_model(name, pretrained=False, **kwargs))


def _probe(form: str, name: str, kwargs: dict[str, Any]) -> dict:
    """In a job: does the builder exist, and what input size does it take."""
    if form == TV:
        tv = import_torchvision()
        if name not in tv.models.list_models():
            from . import names

            raise UserError(f"tv:{name}: torchvision {tv.__version__} has no model {name!r}"
                            f"{names.suggestion(names.close(name, tv.models.list_models()))}")
        weights = tv_weights(name)
        crop = None
        if weights is not None:
            crop = getattr(weights.transforms, "keywords", {}).get("crop_size")
        size = int(crop[0] if isinstance(crop, (list, tuple)) else crop) if crop else 224
        return {"input_tail": (3, size, size), "version": tv.__version__, "stubbed": stubbed(),
                "builder": weights_builder_kwargs(name, weights)}
    timm = import_timm()
    if not timm.is_model(name):
        from . import names

        raise UserError(f"timm:{name}: timm {timm.__version__} has no model {name!r}"
                        f"{names.suggestion(names.close(name, timm.list_models()))}")
    cfg = timm.models.get_pretrained_cfg(name)
    tail = tuple(int(v) for v in getattr(cfg, "input_size", None) or (3, 224, 224)) if cfg else (3, 224, 224)
    size = kwargs.get("img_size")
    if isinstance(size, int):
        tail = (tail[0], size, size)
    return {"input_tail": tail, "version": timm.__version__, "stubbed": stubbed()}


def from_zoo(text: str, batch: Optional[int] = None, input_shape: Optional[str] = None,
             probe_here: bool = False) -> ModelSpec:
    """tv:NAME / timm:NAME[?k=v&...] -> a ModelSpec (the builder's keyword arguments from the query)."""
    from .jobs import call_in_job
    from .spec import parse_shape

    form, _, rest = text.partition(":")
    base, query = _split_query(rest)
    name = base.strip()
    if not name:
        raise UserError(f"model spec {text!r}: expected {form}:NAME")
    given = query.pop("input_shape", None)
    device = query.pop("device", "cpu")
    if device not in ("cpu", "meta"):
        raise UserError(f"model spec {text!r}: device must be meta or cpu, not {device!r}")
    if form == TV and query:
        raise UserError(f"model spec {text!r}: tv: specs take no settings but device (the builder's defaults)")
    missing = _available(form)
    if missing:
        raise UserError(missing)
    facts = _probe(form, name, query) if probe_here else \
        call_in_job(_probe, (form, name, query), f"model spec {text[:200]!r}")
    if input_shape is not None or given is not None:
        shape_text = input_shape if input_shape is not None else (
            ",".join(map(str, given)) if isinstance(given, tuple) else str(given))
        shape = parse_shape(shape_text)
    else:
        shape = (batch or 1,) + tuple(facts["input_tail"])
    factory = f"{__name__}:{'tv_model' if form == TV else 'timm_model'}"
    library = "torchvision" if form == TV else "timm"
    note = f"{library} {facts['version']}, weights not loaded" + (f"; {STUB_NOTE}" if facts.get("stubbed") else "")
    kwargs = {"name": name, **facts.get("builder", {}), **query, **({"device": device} if device != "cpu" else {})}
    return ModelSpec(text, shape, torch_factory=factory, factory_kwargs=tuple(sorted(kwargs.items())),
                     config={"library": library, "library_version": facts["version"]}, note=note,
                     meta=device == "meta")
