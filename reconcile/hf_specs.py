"""hf:MODEL_TYPE[?k=v&...] and preset:NAME[?k=v&...]: `transformers` models built from their configuration
classes only (AutoConfig.for_model + from_config): no weights, no download, works offline. The meta device is used
above META_ABOVE_PARAMS parameters. `hf_model` is the factory job processes call; `from_transformers` resolves the
spec text into a ModelSpec (README "Model specs")."""
from __future__ import annotations

from typing import Any, Callable, Optional

from .errors import UserError
from .spec import ModelSpec, parse_shape, _split_query

HEADS = ("causal-lm", "masked-lm", "image-classification", "base")
DEFAULT_SEQ_CAP = 1024  # default seq_len: the configuration's maximum positions, at most this
META_ABOVE_PARAMS = 1_000_000_000  # larger models are built on the meta device
_ENCODERS = {"bert", "roberta", "distilbert", "albert", "electra", "deberta", "deberta-v2", "xlm-roberta", "camembert",
             "mpnet", "ernie", "big_bird", "longformer", "megatron-bert", "funnel", "layoutlm", "squeezebert"}
_RESERVED = ("head", "attn_implementation", "device")


def default_head(model_type: str) -> str:
    """Causal LM for decoder models, image classification for vision models, the bare model for encoders."""
    from transformers.models.auto.modeling_auto import (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                                                        MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES)

    if model_type in _ENCODERS:
        return "base"
    decoder = model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    if model_type in MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES and not decoder:
        return "image-classification"
    if decoder:
        return "causal-lm"
    return "base"


def _auto_class(head: str):
    import transformers

    return {"causal-lm": transformers.AutoModelForCausalLM, "masked-lm": transformers.AutoModelForMaskedLM,
            "image-classification": transformers.AutoModelForImageClassification,
            "base": transformers.AutoModel}[head]


def hf_config(model_type: str, config_kwargs: dict[str, Any], spec_text: str = ""):
    """AutoConfig.for_model(model_type, **kw), refusing keys the configuration class does not define (a typo
    would otherwise become a silent extra attribute)."""
    from transformers import AutoConfig
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    where = f"model spec {spec_text!r}: " if spec_text else ""
    if model_type not in CONFIG_MAPPING:
        close = sorted(t for t in CONFIG_MAPPING.keys() if t.startswith(model_type[:3]))[:8]
        raise UserError(f"{where}unknown transformers model type {model_type!r}"
                        + (f" (similar: {', '.join(close)})" if close else ""))
    default = AutoConfig.for_model(model_type)
    unknown = [k for k in config_kwargs if not hasattr(default, k) and k not in getattr(default, "attribute_map", {})]
    if unknown:
        raise UserError(f"{where}{type(default).__name__} has no setting {', '.join(map(repr, unknown))}")
    try:
        return AutoConfig.for_model(model_type, **config_kwargs)
    except Exception as exc:
        raise UserError(f"{where}{type(default).__name__}({config_kwargs}) refused: {type(exc).__name__}: {exc}") \
            from None


def hf_model(model_type: str, head: str, device: str = "cpu", attn_implementation: Optional[str] = None,
             **config_kwargs):
    """A `transformers` model from its configuration class only: random init (or none, on meta), no download."""
    import torch

    config = hf_config(model_type, config_kwargs)
    extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
    if device == "meta":
        with torch.device("meta"):
            return _auto_class(head).from_config(config, **extra)
    torch.manual_seed(0)  # values do not change counts; a fixed seed keeps any value-dependent path repeatable
    return _auto_class(head).from_config(config, **extra)


def on_meta(spec: ModelSpec) -> ModelSpec:
    """The same configuration-built model on the meta device (shapes only: no weights initialised, no arithmetic),
    whose layer IR has the same products at a fraction of the time (`which` answers from it); the spec itself when
    it is built on meta already, asks for the CPU (`?device=cpu`) or is not built from a configuration. The key/value
    cache stays on meta (from_transformers turns it off on the CPU only)."""
    import dataclasses

    kwargs = dict(spec.factory_kwargs)
    if spec.meta or spec.torch_factory != f"{__name__}:hf_model" or kwargs.get("device") != "cpu" \
            or "device=cpu" in spec.name:
        return spec
    kwargs["device"] = "meta"
    if kwargs.get("use_cache") is False:
        kwargs.pop("use_cache")
    return dataclasses.replace(spec, factory_kwargs=tuple(sorted(kwargs.items())), meta=True)


def _config_dict(config) -> dict[str, Any]:
    keep = (int, float, str, bool, type(None))
    return {k: v for k, v in sorted(config.to_dict().items()) if isinstance(v, keep)}


def max_positions(config) -> Optional[int]:
    for key in ("max_position_embeddings", "n_positions", "n_ctx", "max_seq_len", "seq_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def probe(model_type: str, head: str, attn: Optional[str], config_kwargs: dict[str, Any], text: str) -> dict:
    """What resolving a spec needs to know of the built model: built once on the meta device (no memory, ~1 s for
    billions of parameters), the parameter count decides the device and the model class says what its input is."""
    try:
        model = hf_model(model_type, head, "meta", attn, **config_kwargs)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"model spec {text!r}: building {model_type} with head {head} failed: "
                        f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}") \
            from None
    from conventions.llm import parameter_groups

    return {"n_params": sum(p.numel() for p in model.parameters()),
            "token_model": getattr(model, "main_input_name", "input_ids") == "input_ids",
            "model_class": type(model).__name__,
            "hf_non_embedding": model.num_parameters(exclude_embeddings=True),
            **parameter_groups(model, model.config)}


def from_transformers(text: str, batch: Optional[int] = None, seq_len: Optional[int] = None,
                      input_shape: Optional[str] = None, trace_with: Optional[Callable] = None,
                      traced: Optional[dict] = None) -> ModelSpec:
    """hf:MODEL_TYPE[?k=v] and preset:NAME[?k=v] -> a ModelSpec whose factory builds the model from config.

    Everything that needs `transformers` (the configuration checked, the model built once on the meta device, its
    input decided) happens in one job process (jobs.call_in_job: bounded in time and memory), so this process
    imports neither transformers nor torch for it. `trace_with(spec, framework)` (models.layer_ir): that job also
    traces the model on the meta device (on_meta), the layer IR put in `traced["ir"]` (None if it failed)."""
    from .jobs import call_in_job

    kind, _, rest = text.partition(":")
    base, query = _split_query(rest)
    note = ""
    if kind == "preset":
        from reference_models import presets

        preset = presets.get(base.strip())
        model_type, config_kwargs, head = preset.model_type, {**preset.config}, preset.head
        note = f"{preset.citation} (paper: {preset.paper_params} parameters). {preset.note}"
    else:
        model_type, config_kwargs, head = base.strip(), {}, None
    options = {k: query.pop(k) for k in _RESERVED if k in query}
    config_kwargs.update(query)
    head = options.get("head") or head
    if head is not None and head not in HEADS:
        raise UserError(f"model spec {text!r}: head must be one of {', '.join(HEADS)}, not {head!r}")
    attn = options.get("attn_implementation")
    if attn is not None and attn not in ("eager", "sdpa"):
        raise UserError(f"model spec {text!r}: attn_implementation must be eager or sdpa, not {attn!r}")
    device = options.get("device")
    if device not in (None, "meta", "cpu"):
        raise UserError(f"model spec {text!r}: device must be meta or cpu, not {device!r}")
    if input_shape is not None:
        parse_shape(input_shape)  # a malformed shape is refused before any job runs
    state, value, ir = call_in_job(_resolve, (text, model_type, config_kwargs, head, attn, device, note, batch,
                                              seq_len, input_shape, trace_with), f"model spec {text[:200]!r}")
    if state == "error":
        raise UserError(value)
    if traced is not None:
        traced["ir"] = ir
    return value


def _resolve(text: str, model_type: str, config_kwargs: dict[str, Any], head: Optional[str], attn: Optional[str],
             device: Optional[str], note: str, batch: Optional[int], seq_len: Optional[int],
             input_shape: Optional[str], trace_with: Optional[Callable]) -> tuple[str, Any, Any]:
    """In a job process: ("ok", ModelSpec, layer IR or None) or ("error", the one line, None)."""
    try:
        spec = _spec(text, model_type, config_kwargs, head, attn, device, note, batch, seq_len, input_shape)
    except UserError as exc:
        return "error", str(exc), None
    ir = None
    if trace_with is not None:
        try:
            ir = trace_with(on_meta(spec), "torch")
        except Exception:  # noqa: BLE001 (traced again, and its failure said, by the caller's own trace)
            ir = None
    return "ok", spec, ir


def _spec(text: str, model_type: str, config_kwargs: dict[str, Any], head: Optional[str], attn: Optional[str],
          device: Optional[str], note: str, batch: Optional[int], seq_len: Optional[int],
          input_shape: Optional[str]) -> ModelSpec:
    from .spec import refuse_negative_counts

    config = hf_config(model_type, config_kwargs, text)
    head = head or default_head(model_type)
    refuse_negative_counts(model_type, config_kwargs, text)
    facts = probe(model_type, head, attn, config_kwargs, text)
    n_params = facts["n_params"]
    meta = device == "meta" or (device is None and n_params > META_ABOVE_PARAMS)
    token_model = facts["token_model"]
    if input_shape is not None:
        shape = parse_shape(input_shape)
        if token_model and len(shape) != 2:
            raise UserError(f"{text!r} takes token ids: --input-shape B,T (batch, sequence length), not {input_shape}")
    elif token_model:
        cap = max_positions(config)
        seq = seq_len or min(cap or DEFAULT_SEQ_CAP, DEFAULT_SEQ_CAP)
        if cap is not None and seq > cap:
            raise UserError(f"--seq-len {seq} exceeds {text!r}'s {cap} positions")
        shape = (batch or 1, seq)
    else:
        if seq_len is not None:
            raise UserError(f"--seq-len applies to token models; {text!r} takes images")
        size = getattr(config, "image_size", 224)
        size = size if isinstance(size, int) else int(size[0])
        shape = (batch or 1, getattr(config, "num_channels", 3), size, size)
    if not meta and "use_cache" not in config_kwargs and hasattr(config, "use_cache"):
        # One forward over T tokens needs no key/value cache, and its DynamicCache output stops torch.jit tracing
        # (fvcore). On the meta device the cache stays: without it transformers checks position_ids for packed
        # sequences with a .item() that meta tensors refuse (masking_utils.find_packed_sequence_indices).
        config_kwargs["use_cache"] = False
        config = hf_config(model_type, config_kwargs, text)
    kwargs = dict(model_type=model_type, head=head, device="meta" if meta else "cpu", **config_kwargs)
    if attn:
        kwargs["attn_implementation"] = attn
    info = dict(_config_dict(config), head=head, model_class=facts["model_class"], n_params=n_params,
                hf_non_embedding=facts["hf_non_embedding"],
                **{k: v for k, v in facts.items() if k.startswith("p_")})  # parameter groups (conventions/llm.py)
    if attn:
        info["attn_implementation"] = attn
    return ModelSpec(text, shape, torch_factory=f"{__name__}:hf_model", factory_kwargs=tuple(sorted(kwargs.items())),
                     token_model=token_model, config=info, meta=meta, note=note)
