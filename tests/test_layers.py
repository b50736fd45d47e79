"""The import graph of ``core``: packages in layers, a lower one never importing a higher one, and
no cycles, counting the imports placed inside functions too (a cycle hidden in a function is
still a cycle, and it fails at the first call that closes it)."""

from __future__ import annotations

import ast
from pathlib import Path

from core.base.paths import PROJECT_ROOT

CORE = PROJECT_ROOT / "core"
# lowest first; the entry points (core.cli, core.__main__) sit above them all
LAYERS = ("base", "data", "models", "store", "engine", "answers", "serving", "present")
ENTRY_POINTS = {"core", "core.cli", "core.cli.parser", "core.cli.results", "core.__main__"}


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


def reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(edges.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(edges.get(node, ()))
    return seen


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or through others, each sorted."""
    reach = {node: reachable(edges, node) for node in edges}
    groups = {frozenset(other for other in reach[node] if node in reach.get(other, ())) for node in edges}
    return sorted(sorted(group) for group in groups if len(group) > 1)


def layer(module: str) -> int:
    return LAYERS.index(module.split(".")[1])


def test_core_has_no_import_cycle():
    assert cycles(graph()) == []


def test_every_module_sits_in_a_layer_and_imports_only_layers_below_or_its_own():
    edges = graph()
    assert {m for m in edges if m not in ENTRY_POINTS and m.split(".")[1] not in LAYERS} == set()
    upward = [
        f"{module} imports {target}"
        for module, targets in edges.items()
        if module not in ENTRY_POINTS
        for target in targets
        if layer(target) > layer(module)
    ]
    assert upward == []


def test_the_cycle_finder_finds_a_cycle_hidden_in_a_function(tmp_path):
    edges = {"core.a": {"core.b"}, "core.b": {"core.c"}, "core.c": {"core.a"}, "core.d": {"core.a"}}
    assert cycles(edges) == [["core.a", "core.b", "core.c"]]
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from core.store import runs, record\n    import core.base.paths\n")
    assert imports(source) == {"core.store.runs", "core.store.record", "core.base.paths"}


# third-party packages that cost seconds to import: a core module that imports one at its top is
# imported inside the functions that need it, so that a page, --help or a bad flag stays quick
HEAVY = {"torch", "torchvision", "lightning", "pytorch_grad_cam", "ray", "openvino", "onnxruntime", "onnx"}


def _top_level(path: Path) -> tuple[set[str], set[str]]:
    """The third-party packages and the ``core`` modules ``path`` imports at its top level."""
    packages, modules = set(), set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            packages |= {alias.name.split(".")[0] for alias in node.names}
            modules |= {alias.name for alias in node.names if alias.name.startswith("core.")}
        elif isinstance(node, ast.ImportFrom) and node.module:
            packages.add(node.module.split(".")[0])
            if node.module.startswith("core"):
                submodules = {f"{node.module}.{alias.name}" for alias in node.names}
                modules |= {name for name in submodules if _is_module(name)} or {node.module}
    return packages, modules


def heavy_modules() -> set[str]:
    """The core modules whose import pulls in a heavy package, directly or through another."""
    named = {module_name(path): path for path in sorted(CORE.rglob("*.py"))}
    tops = {name: _top_level(path) for name, path in named.items()}
    heavy = {name for name, (packages, _) in tops.items() if packages & HEAVY}
    while grown := {name for name, (_, modules) in tops.items() if modules & heavy} - heavy:
        heavy |= grown
    return heavy


def lazy_imports() -> list[tuple[str, str]]:
    """(importer, imported) for every ``core`` import placed inside a function."""
    found = []
    for path in sorted(CORE.rglob("*.py")):
        for function in ast.walk(ast.parse(path.read_text())):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("core"):
                    submodules = {f"{node.module}.{alias.name}" for alias in node.names}
                    for name in {n for n in submodules if _is_module(n)} or {node.module}:
                        found.append((module_name(path), name))
    return found


def test_a_core_import_sits_inside_a_function_only_to_defer_a_heavy_package():
    """``core`` imports belong at the top of a module; one inside a function is there to keep a
    heavy package (torch, Lightning, Ray, OpenVINO, ONNX Runtime) out of a light import, and
    nothing else: not to dodge a cycle (there is none) nor by habit. The command line is the
    exception by design: each command imports its engine when it runs, so ``--help`` and a bad
    flag answer before pandas, SciPy or Plotly are loaded."""
    heavy = heavy_modules()
    needless = {
        (importer, imported)
        for importer, imported in lazy_imports()
        if imported not in heavy and importer not in ENTRY_POINTS
    }
    assert sorted(needless) == []


def test_no_page_is_longer_than_150_lines():
    """A page lays out; anything longer has logic that belongs in ``core`` (issue: pages that
    only lay out)."""
    long = {
        path.name: n
        for path in sorted((PROJECT_ROOT / "pages").glob("*.py"))
        if (n := len(path.read_text().splitlines())) > 150
    }
    assert not long, long


def test_no_function_outside_tests_is_longer_than_60_lines():
    """A function that needs more than a screen does more than one job (issue: split the
    functions over 60 lines); the app, its pages, ``core`` and the benchmarks are held to it."""
    sources = [PROJECT_ROOT / "app.py", *(PROJECT_ROOT / d for d in ("core", "pages", "bench"))]
    files = [s for s in sources if s.is_file()] + [
        p for s in sources if s.is_dir() for p in sorted(s.rglob("*.py"))
    ]
    long = {
        f"{path.relative_to(PROJECT_ROOT)}:{node.name}": node.end_lineno - node.lineno + 1
        for path in files
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > 60
    }
    assert not long, long


def _column_reads(path: Path, root: Path = PROJECT_ROOT) -> list[str]:
    """``frame["accuracy"]``-style reads of a run-table column in one file: subscripts whose key
    is a column's name as a string (``st.session_state[...]`` keys are the page's own)."""
    from core.store.tables import COLUMNS

    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Subscript) or ast.unparse(node.value).endswith("session_state"):
            continue
        keys = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if any(isinstance(k, ast.Constant) and k.value in COLUMNS for k in keys):
            found.append((node.lineno, f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node)}"))
    return [read for _, read in sorted(found)]


def test_the_app_and_its_pages_read_run_data_by_name_not_by_column_string():
    """Pages ask :mod:`core.store.run_queries` or read typed records; a renamed column then
    breaks under a test in ``core``, not on a page in front of someone (issue: types to the edges)."""
    files = [PROJECT_ROOT / "app.py", *sorted((PROJECT_ROOT / "pages").rglob("*.py"))]
    assert [read for path in files for read in _column_reads(path)] == []


def test_the_column_read_finder_finds_one(tmp_path):
    page = tmp_path / "page.py"
    page.write_text(
        'mine = table[table["data"] == folder]\nst.session_state["data"] = 1\nx = f.loc[m, "accuracy"]\n'
    )
    assert _column_reads(page, tmp_path) == [
        "page.py:1: table['data']",
        "page.py:3: f.loc[m, 'accuracy']",
    ]
