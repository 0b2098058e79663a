"""The analysis layer depends one way: no import cycles among the modules of reconcile/ and conventions/.

Every import counts, at module level or inside a function (a deferred import is still a dependency), read from
the source with `ast`; relative imports are resolved against the importing module's package."""
from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("reconcile", "conventions", "reference_models")


def modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The known modules `name` imports. `from . import x` names the submodule x when there is one, else the
    package; a package's own __init__ is not a dependency of its submodules (Python runs it first anyway)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        found = []
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        elif isinstance(node, ast.Import):
            found = [a.name for a in node.names]
        for target in found:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                targets.add(target)
    return targets


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


@functools.cache  # parsing every module is most of these tests' time: once per session
def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_the_detector_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_deferred_and_relative_imports():
    g = graph()
    assert "reconcile.render" in g["reconcile.report"]  # `from .render import ...` at module level
    assert "reconcile.diff" in g["reconcile.which"]  # `from .diff import canonical_ir` inside a function
    assert "conventions.terms" in g["reconcile.changes"]


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_rendering_and_wording_depend_on_no_analysis():
    """The rendering module knows no tools or models; drift and golden share the wording, not each other."""
    g = graph()
    assert not {m for m in g["reconcile.render"] if m.startswith(("reconcile.", "conventions."))}
    assert "reconcile.drift" not in g["reconcile.golden"] or "reconcile.changes" in g["reconcile.golden"]
    assert "reconcile.report" not in g["reconcile.which"] and "reconcile.report" not in g["reconcile.diff"]
