"""The package's layers only point down: every import (top-level, lazy inside a function, or
under ``TYPE_CHECKING``) goes from a unit to one in a lower layer of docs/architecture.md, and
no two modules import each other, directly or around a loop."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "featurestore"
ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"


@cache
def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


@cache
def imports() -> dict[str, set[str]]:
    """The package modules each module imports, wherever in the module the import stands."""
    known = modules()
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                # ``from package import submodule`` imports the submodule, not the package
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
                ]
            edges[name].update(t for t in targets if t in known and t != name)
    return edges


def unit(module: str) -> str:
    """The layer unit a module belongs to: its subpackage, or itself for a top-level module."""
    parts = module.split(".")
    if len(parts) > 1 and (PACKAGE / parts[1]).is_dir():
        return ".".join(parts[:2])
    return module


@cache
def layers() -> dict[str, int]:
    """Each unit's layer, read from the ``layers`` block of docs/architecture.md (top first)."""
    block = re.search(r"```text\n# layers.*?\n(.*?)```", ARCHITECTURE.read_text(), re.S)
    assert block, "docs/architecture.md lost its layers block"
    rows = [line.split("#")[0].split() for line in block.group(1).splitlines()]
    rows = [r for r in rows if r]
    return {
        f"featurestore.{u}" if u != "featurestore" else u: len(rows) - i
        for i, r in enumerate(rows)
        for u in r
    }


def test_every_unit_has_a_layer() -> None:
    units = {unit(m) for m in modules()}
    assert units - set(layers()) == set(), "add the new unit to docs/architecture.md's layers"
    assert set(layers()) - units == set(), "docs/architecture.md names a unit that is gone"


def test_imports_only_point_down() -> None:
    layer = layers()
    upward = sorted(
        f"{source} imports {target} ({unit(source)} is layer {layer[unit(source)]}, "
        f"{unit(target)} is layer {layer[unit(target)]})"
        for source, targets in imports().items()
        for target in targets
        if unit(source) != unit(target) and layer[unit(target)] >= layer[unit(source)]
    )
    assert upward == []


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(set(edges) | {t for ts in edges.values() for t in ts}):
        if node not in index:
            visit(node)
    return found


def test_no_module_cycles() -> None:
    assert _cycles(imports()) == []


def test_no_package_cycles() -> None:
    by_unit: dict[str, set[str]] = defaultdict(set)
    for source, targets in imports().items():
        by_unit[unit(source)].update(unit(t) for t in targets if unit(t) != unit(source))
    assert _cycles(by_unit) == []


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": set()}, []),
        ({"a": {"b"}, "b": {"a"}, "c": {"a"}}, [["a", "b"]]),
    ],
)
def test_the_cycle_finder_finds_cycles(
    edges: dict[str, set[str]], expected: list[list[str]]
) -> None:
    assert _cycles(edges) == expected


def test_lazy_and_type_checking_imports_are_seen() -> None:
    """The facade imports the reports only inside its methods and under TYPE_CHECKING, and the
    ``serve`` verb imports the server inside its function: both count."""
    assert "featurestore.monitoring" in imports()["featurestore._store"]
    assert "featurestore.server" in imports()["featurestore.cli._commands._serving"]
