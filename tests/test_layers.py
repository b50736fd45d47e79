"""The import graph of ``core``: no cycles, counting the imports placed inside functions too (a
cycle hidden in a function is still a cycle, and it fails at the first call that closes it)."""

from __future__ import annotations

import ast
from pathlib import Path

from core.paths import PROJECT_ROOT

CORE = PROJECT_ROOT / "core"


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = PROJECT_ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def imports(path: Path) -> set[str]:
    """The ``core`` modules ``path`` imports, anywhere in it (``from core import x`` names module
    ``core.x`` when there is one)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "core"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "core":
            submodules = {f"{node.module}.{alias.name}" for alias in node.names}
            found |= {name for name in submodules if _is_module(name)} or {node.module}
    return found


def graph() -> dict[str, set[str]]:
    named = {module_name(path): path for path in sorted(CORE.rglob("*.py"))}
    return {name: imports(path) - {name} for name, path in named.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_core_has_no_import_cycle():
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_a_cycle_hidden_in_a_function(tmp_path):
    edges = {"core.a": {"core.b"}, "core.b": {"core.c"}, "core.c": {"core.a"}, "core.d": {"core.a"}}
    assert cycles(edges) == [["core.a", "core.b", "core.c"]]
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from core import runs, paths\n    import core.record\n")
    assert imports(source) == {"core.runs", "core.paths", "core.record"}
