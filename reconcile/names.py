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
    close one), `hf:NAME` for a transformers model (or a close one)."""
    presets = list(presets)
    out = [f"preset:{name}"] if name in presets else [f"preset:{p}" for p in close(name, presets, 2)]
    types = transformers_models()
    key = name.lower().replace("-", "_")
    if key in types:
        return [f"hf:{key}"] + out
    return out + [f"hf:{t}" for t in difflib.get_close_matches(key, types, n=1, cutoff=0.8)]


def transformers_models() -> list[str]:
    """The model folders of the installed transformers (transformers/models/<type>/), read from the file system:
    importing its table of configurations takes seconds, too long for an error message. A folder is named after
    the model type it holds (gpt2, llama, vit, mobilenet_v2); [] when transformers is not installed."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("transformers")
    if spec is None or not spec.submodule_search_locations:
        return []
    folder = Path(list(spec.submodule_search_locations)[0]) / "models"
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and (p / "__init__.py").is_file()) \
        if folder.is_dir() else []
