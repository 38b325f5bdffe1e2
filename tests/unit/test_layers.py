"""The package's imports point one way: no two modules import each other,
through any chain, counting the imports made only for type checking and
those inside functions (a lazy import still ties the two modules together,
and a type hint still makes one module's meaning depend on the other's).

The layers themselves (which package may import which) are import-linter's
contracts in pyproject.toml, run by `lint-imports` in `make test`.

`python tests/unit/test_layers.py` prints every cycle with the lines that make it.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import bwsandbox

PACKAGE = Path(bwsandbox.__file__).resolve().parent


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package by dotted name. A C extension counts by its
    stub (`.pyi`), so `from bwsandbox.validator import _ccells` is an import of
    `_ccells`, not of the package `bwsandbox.validator`."""
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py*")):
        if path.suffix not in (".py", ".pyi") or "__pycache__" in path.parts:
            continue
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        name = ".".join(parts)
        if path.suffix == ".py" or name not in found:
            found[name] = path
    return found


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The module an import of `name` loads: the longest known prefix."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return None


def _imported(module: str, path: Path, known: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import statement anywhere in the file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name, known)
                if target is not None:
                    yield target, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                # `from P import m` loads the module P.m when there is one, else P
                target = _resolve(f"{base}.{alias.name}", known) if alias.name != "*" else None
                if target is None or target == _resolve(base, known):
                    target = _resolve(base, known)
                if target is not None:
                    yield target, node.lineno


def import_graph(root: Path = PACKAGE) -> dict[str, dict[str, list[int]]]:
    """importer -> imported -> lines, over the package's own modules."""
    known = modules(root)
    graph: dict[str, dict[str, list[int]]] = {name: {} for name in known}
    for name, path in known.items():
        if path.suffix != ".py":
            continue
        for target, line in _imported(name, path, known):
            lines = graph[name].setdefault(target, []) if target != name else [line]
            if line not in lines:
                lines.append(line)
    return graph


def cycles(graph: dict[str, dict[str, list[int]]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's
    algorithm, iterative): each is one or more cycles tied together."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(frozenset(component))
    return found


def describe(component: frozenset[str], graph: dict[str, dict[str, list[int]]]) -> str:
    lines = [" <-> ".join(sorted(component))]
    for importer in sorted(component):
        for imported, at in sorted(graph[importer].items()):
            if imported in component:
                lines.append(f"    {importer} -> {imported} (line {', '.join(map(str, at))})")
    return "\n".join(lines)


def test_no_module_of_the_package_imports_itself_back_through_another() -> None:
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(describe(c, graph) for c in found)


def test_the_cycle_finder_sees_lazy_type_checking_and_extension_imports(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "sub" / "__init__.py").write_text("from pkg.sub import a\n")
    (root / "sub" / "a.py").write_text("def f():\n    from pkg.sub import _ext\n")
    (root / "sub" / "_ext.pyi").write_text("")
    (root / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import c\n")
    (root / "c.py").write_text("def g():\n    from . import b\n")
    graph = import_graph(root)
    assert graph["pkg.sub.a"] == {"pkg.sub._ext": [2]}  # the extension, not the package: no cycle
    assert cycles(graph) == [frozenset({"pkg.b", "pkg.c"})]


if __name__ == "__main__":
    found = import_graph()
    for component in cycles(found):
        print(describe(component, found))
    sys.exit(0)
