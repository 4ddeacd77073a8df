"""The layers import one way, flows -> tasks -> lib, and lib never imports Prefect."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "lib": ("prefect", "tasks", "flows"),
    "tasks": ("flows",),
}


def imported_roots(path: Path) -> set[str]:
    """Top-level names of every module `path` imports, at module level or inside functions."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(layer: str) -> None:
    offending = {
        str(path.relative_to(REPO_ROOT)): sorted(imported_roots(path) & set(FORBIDDEN[layer]))
        for path in sorted((REPO_ROOT / layer).rglob("*.py"))
    }
    assert {file: names for file, names in offending.items() if names} == {}
