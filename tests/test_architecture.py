"""The import rules of ARCHITECTURE.md, checked on the source with `ast` (only the sweep tables are imported).

groktune <- tasks <- trials <- orchestrator; analysis and cluster import only groktune.
Every import counts, for the layering rules and for circles: module-level, function-level
(deferred) and `if TYPE_CHECKING:` ones. A deferred import only hides a circle from the import
machinery; the modules still depend on each other. An import inside a function carries a
`# deferred: why` comment; no module outside orchestrator.search.algos' tables compares against
a searcher or scheduler name.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("groktune", "tasks", "trials", "orchestrator", "analysis", "cluster")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    """Every module of the six packages, by dotted name."""
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _top_level(body: list[ast.stmt]):
    """Import nodes run at import time: module body, try/if blocks, not TYPE_CHECKING or defs."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and not _is_type_checking(node):
            yield from _top_level(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            yield from _top_level(node.body + node.orelse + node.finalbody
                                  + [s for h in node.handlers for s in h.body])


def _targets(node: ast.Import | ast.ImportFrom, here: str, known: dict[str, Path]) -> set[str]:
    """The dotted names an import statement loads (a submodule when `from pkg import mod`)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    base = node.module or ""
    if node.level:  # relative import: resolve against this module's package
        package = here if known.get(here, Path()).name == "__init__.py" else here.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}".strip(".")
    return {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}


def import_graph(top_level_only: bool, known: dict[str, Path] | None = None) -> dict[str, set[str]]:
    """module -> the modules (any name, ours or not) it imports; `known`: name -> file (ours by default)."""
    known = modules() if known is None else known
    graph = {}
    for name, path in known.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        nodes = (_top_level(tree.body) if top_level_only
                 else (n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))))
        graph[name] = set().union(*(_targets(n, name, known) for n in nodes))
    return graph


def _package(name: str) -> str:
    return name.split(".")[0]


def reaches(graph: dict[str, set[str]], start: str, package: str) -> list[str] | None:
    """An import chain from `start` to any module of `package`, or None."""
    seen, stack = {start}, [[start]]
    while stack:
        chain = stack.pop()
        for target in sorted(graph.get(chain[-1], ())):
            if _package(target) == package:
                return chain + [target]
            if target in graph and target not in seen:
                seen.add(target)
                stack.append(chain + [target])
    return None


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle per strongly connected component of our modules (Tarjan)."""
    index, low, on, stack, found, counter = {}, {}, set(), [], [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(t for t in graph[v] if t in graph):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_checker_finds_what_it_looks_for():
    graph = {"a.x": {"a.y"}, "a.y": {"b.z", "a.x"}, "b.z": {"c.w"}, "c.w": set()}
    assert cycles(graph) == [["a.x", "a.y"]]
    assert reaches(graph, "a.x", "c") == ["a.x", "a.y", "b.z", "c.w"]
    assert reaches(graph, "b.z", "a") is None
    assert "orchestrator.config.experiment" in import_graph(top_level_only=True)


def test_nothing_below_orchestrator_reaches_it():
    graph = import_graph(top_level_only=False)
    chains = [reaches(graph, m, "orchestrator") for m in graph
              if _package(m) in ("analysis", "cluster", "tasks", "trials", "groktune")]
    assert [c for c in chains if c] == []


def test_groktune_base_imports_no_other_package_nor_torch_or_ray():
    graph = import_graph(top_level_only=False)
    forbidden = set(PACKAGES) - {"groktune"} | {"torch", "ray"}
    bad = {m: sorted(t for t in ts if _package(t) in forbidden)
           for m, ts in graph.items() if _package(m) == "groktune"}
    assert {m: ts for m, ts in bad.items() if ts} == {}


def test_analysis_and_cluster_import_only_the_base():
    graph = import_graph(top_level_only=False)
    ours = set(PACKAGES)
    bad = {m: sorted(t for t in ts if _package(t) in ours - {"groktune", _package(m)})
           for m, ts in graph.items() if _package(m) in ("analysis", "cluster")}
    assert {m: ts for m, ts in bad.items() if ts} == {}


def test_trials_imports_no_ray():
    graph = import_graph(top_level_only=False)
    bad = [m for m, ts in graph.items() if _package(m) == "trials" and any(_package(t) == "ray" for t in ts)]
    assert bad == []
    assert any(_package(t) == "ray" for t in graph["orchestrator.sweep.adapter"])  # the adapter moved, not vanished


def test_the_circle_check_sees_deferred_and_type_checking_imports(tmp_path):
    files = {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg.b import f\n",
        "pkg/b.py": "def f():\n    from pkg import c  # deferred: hides a circle\n",
        "pkg/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import X\n",
        "pkg/d.py": "import pkg.a\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        (tmp_path / rel).write_text(text)
    known = {"pkg": tmp_path / "pkg/__init__.py", **{f"pkg.{x}": tmp_path / f"pkg/{x}.py" for x in "abcd"}}
    assert cycles(import_graph(top_level_only=False, known=known)) == [["pkg.a", "pkg.b", "pkg.c"]]
    assert cycles(import_graph(top_level_only=True, known=known)) == []  # what the import machinery sees


def test_no_import_circles_deferred_imports_included():
    circles = cycles(import_graph(top_level_only=False))
    assert circles == [], "import circles (deferred and TYPE_CHECKING imports count): " + "; ".join(
        " <-> ".join(c) for c in circles)


def test_production_code_has_no_test_hooks():
    """Test-only behaviour (failing a trial once, ...) lives in tests/, e.g. tests/orchestrator/fail_once.py."""
    hooks = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and "GROKTUNE_TEST" in node.value:
                hooks.append(f"{name}:{node.lineno}")
    assert hooks == []


# --- imports inside functions carry their reason ------------------------------------

DEFERRED = "# deferred:"


def unmarked_function_imports(source: str) -> list[int]:
    """Lines of imports inside functions with no `# deferred: why` on them or on the line above."""
    lines = source.splitlines()
    found = set()
    for fn in ast.walk(ast.parse(source)):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                span = lines[node.lineno - 2:node.end_lineno] if node.lineno > 1 else lines[:node.end_lineno]
                if not any(DEFERRED in line for line in span):
                    found.add(node.lineno)
    return sorted(found)


def test_the_deferred_check_finds_what_it_looks_for():
    source = ("import os\n\ndef f():\n    import json\n    # deferred: heavy\n    import csv\n"
              "    from ray import tune  # deferred: Ray\n\nclass C:\n    def g(self):\n        import re\n")
    assert unmarked_function_imports(source) == [4, 11]


def test_imports_inside_functions_say_why_they_are_deferred():
    """Light modules are imported at the top; an import left in a function (heavy: torch, Ray,
    Optuna, scipy; optional: tensorboard; or a circle) says why on its line or the line above."""
    bad = {}
    for name, path in modules().items():
        lines = unmarked_function_imports(path.read_text())
        if lines:
            bad[name] = lines
    assert bad == {}


def test_no_module_tests_a_searcher_or_scheduler_name():
    """What a searcher or scheduler needs is a field of its spec in orchestrator.search.algos
    (SEARCHERS, SCHEDULERS), never `algorithm == "pbt"` elsewhere."""
    from groktune.space import DISTRIBUTIONS
    from orchestrator.search.algos import SCHEDULERS, SEARCHERS

    names = (set(SEARCHERS) | set(SCHEDULERS)) - set(DISTRIBUTIONS)  # "grid" is a distribution too
    assert {"tpe", "pbt", "asha"} <= names
    tests = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Compare):
                continue
            for side in [node.left, *node.comparators]:
                elements = side.elts if isinstance(side, (ast.Tuple, ast.List, ast.Set)) else [side]
                if any(isinstance(e, ast.Constant) and e.value in names for e in elements):
                    tests.append(f"{name}:{node.lineno}")
    assert tests == []


# --- one error hierarchy ------------------------------------------------------------------------

def test_user_errors_are_one_hierarchy_in_groktune_errors():
    """Every error a user can fix is groktune.errors.UserError or a subclass defined there (the CLI
    catches UserError alone); no package keeps an errors module or re-exports of its own."""
    import groktune.errors as errors

    assert [m for m in modules() if m.endswith(".errors")] == ["groktune.errors"]
    public = [name for name in errors.__all__ if name != "UserError"]
    assert public and all(issubclass(getattr(errors, name), errors.UserError) for name in public)
    elsewhere = []
    for name, path in modules().items():
        if name == "groktune.errors":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_") and any(
                    isinstance(b, ast.Name) and b.id.endswith(("Error", "Exception")) for b in node.bases):
                elsewhere.append(f"{name}.{node.name}")
    assert elsewhere == []
