"""Importing torchvision where it is installed, before transformers (which imports it itself when it finds it).

torchvision's own `import` registers fake (meta) kernels for its C++ ops in `torchvision._meta_registrations`; a
torchvision wheel built for another torch variant (a CUDA build beside torch+cpu) has no such ops and that import
fails with "operator torchvision::nms does not exist", which then breaks every transformers model class. The
classification builders and transformers' models use none of those ops, so when (and only when) that import fails,
the module is replaced by an empty one and the import retried. Below every spec module (no reconcile imports but
factories), so spec.py, hf_specs.py and zoo_specs.py can all call it."""
from __future__ import annotations

import sys
import types

_STUBBED = "torchvision._meta_registrations"


def import_torchvision():
    """`import torchvision`, with the meta-registration module stubbed only if its own import fails (above)."""
    try:
        import torchvision

        return torchvision
    except (RuntimeError, ImportError, AttributeError) as exc:
        if "torchvision::" not in str(exc) and "_meta_registrations" not in str(exc):
            raise
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]
    sys.modules[_STUBBED] = types.ModuleType(_STUBBED)
    import torchvision

    return torchvision


def torchvision_first() -> None:
    """Where torchvision is installed, import it (stubbed as above if need be) before transformers is: transformers
    imports torchvision itself when it finds it, and a failing import there breaks every model class."""
    if "torchvision" in sys.modules or _CHECKED:
        return
    _CHECKED.append(True)
    from .factories import locate_module

    if locate_module("torchvision") is not None:
        try:
            import_torchvision()
        except Exception:  # noqa: BLE001 (broken otherwise: the models that need it say so)
            pass


_CHECKED: list = []  # torchvision_first ran in this process


def stubbed() -> bool:
    module = sys.modules.get(_STUBBED)
    return module is not None and getattr(module, "__file__", None) is None
