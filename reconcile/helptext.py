"""Help text shared by the commands (`reconcile formulas/run/which/check/models --help`)."""
from __future__ import annotations

import textwrap


def model_spec_help() -> str:
    """Model specs, as every command's --help shows them (README "Model specs"; grammar in reconcile/spec.py and
    reconcile/models.py); the presets named from their registry, so a new one shows up here."""
    from reference_models.presets import PRESETS

    families: dict[str, list[str]] = {}
    for name in PRESETS:
        families.setdefault(name.rsplit("-", 1)[0], []).append(name)
    named = ", ".join(names[0] if len(names) == 1 else f"{names[0]} ... {names[-1].rsplit('-', 1)[1]}"
                      for names in families.values())
    text = f"""Model specs (MODEL, --models): a reference model (lenet, resnet50_v1, ...: reconcile models);
a .prototxt file; PATH.py:FACTORY[?k=v&...] (FACTORY returns a torch nn.Module; input_shape=N,C,H,W in the query or
--input-shape); module:PACKAGE.MODULE:FACTORY[?k=v&...] (any importable factory); hf:MODEL_TYPE[?k=v&...] (a
transformers configuration, no weights, e.g. hf:gpt2, hf:llama?num_hidden_layers=80, hf:vit, hf:bert);
preset:NAME[?k=v&...] (a published architecture with its paper table: {named}; reconcile models --presets);
tv:NAME (a torchvision builder, where torchvision imports); timm:NAME[?k=v&...] (timm.create_model).
Query keys: config settings (lists as depths=2,2,18,2), plus head=causal-lm|masked-lm|image-classification|base,
attn_implementation=eager|sdpa, experts_implementation=eager|grouped_mm|batched_mm, sizes=small (the small-config
rule), inputs=pixel_values,..., device=meta|cpu. Shapes: 1,3,224,224. Token models take --batch (default 1) and --seq-len (default: the
configuration's maximum positions, at most 1024)."""
    # click rewraps help text and splits words at hyphens (--input-shape); a paragraph after \b it prints as is
    return "\b\n" + "\n".join(textwrap.wrap(" ".join(text.split()), 78, break_on_hyphens=False))

