"""Did you mean ...? Close names for a name the user mistyped: reference models, tools, presets, and the spec
forms a bare name may have been meant as (`vit` -> `hf:vit`, `gpt3-175b` -> `preset:gpt3-175b`)."""
from __future__ import annotations

import difflib
from typing import Iterable


def close(name: str, choices: Iterable[str], most: int = 3) -> list[str]:
    """The choices a typo most likely meant: those that extend it (`resnet50` -> `resnet50_v1`,
    `resnet50_v15`), then difflib's closest (ratio 0.75 and up: one or two letters off), case ignored, at most
    `most`."""
    choices = list(dict.fromkeys(choices))
    lowered = {c.lower(): c for c in choices}
    key = name.lower()
    extend = sorted((c for c in choices if c.lower().startswith(key) and c.lower() != key), key=len)
    similar = [lowered[c] for c in difflib.get_close_matches(key, list(lowered), n=most, cutoff=0.75)]
    return list(dict.fromkeys(extend + similar))[:most]


def suggestion(found: list[str]) -> str:
    """' (did you mean resnet50_v1 or resnet50_v15?)' to follow the unknown name, or ''."""
    found = list(dict.fromkeys(found))
    if not found:
        return ""
    return " (did you mean " + (found[0] if len(found) == 1 else f"{', '.join(found[:-1])} or {found[-1]}") + "?)"


def did_you_mean(name: str, choices: Iterable[str], most: int = 3) -> str:
    return suggestion(close(name, choices, most))


def spec_forms(name: str, presets: Iterable[str]) -> list[str]:
    """The spec a bare name was probably meant as: `preset:NAME` for a preset name or alias (`presets`; or a
    close one), `hf:NAME` for a transformers model type (read from transformers' table of configuration names:
    no model is built)."""
    presets = list(presets)
    out = [f"preset:{name}"] if name in presets else [f"preset:{p}" for p in close(name, presets, 2)]
    try:
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
    except ImportError:  # transformers is an optional part of the install
        return out
    if name.lower() in CONFIG_MAPPING_NAMES:
        return [f"hf:{name.lower()}"] + out
    return out + [f"hf:{t}" for t in difflib.get_close_matches(name.lower(), list(CONFIG_MAPPING_NAMES), n=1,
                                                                cutoff=0.8)]
