"""Code versions for cache keys, derived from what a step's module imports, never listed.

A step's code version hashes the source of its module and of every `lib` module that module
imports, directly or through others (its import closure), plus the `__init__.py` of every
package on the way (Python runs those too). A hand-kept list of modules drifts the first time
someone adds an import; a closure cannot. The closure is read from the source with `ast`,
without importing anything, so computing a cache key never starts TensorFlow. Imports inside
functions count as well: a lazy import is still code the step runs.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from collections.abc import Iterable
from pathlib import Path

import lib

PACKAGE = "lib"
VERSION_CHARS = 16


def package_root() -> Path:
    """The folder of the `lib` package whose sources are hashed."""
    return Path(lib.__file__ or "").parent


def module_file(name: str, root: Path) -> Path:
    """The source file of `lib` module `name` under `root` (a package's `__init__.py`).

    Raises:
        ModuleNotFoundError: when no such module exists under `root`.
    """
    parts = name.split(".")[1:]
    if not parts:
        return root / "__init__.py"
    stem = root.joinpath(*parts)
    for candidate in (stem.with_suffix(".py"), stem / "__init__.py"):
        if candidate.is_file():
            return candidate
    raise ModuleNotFoundError(f"Expected a module {name} under {root}. Received: no such file")


@functools.cache
def _imported_names(source: str, module: str, is_package: bool) -> frozenset[str]:
    """Every dotted name an import statement of `source` may refer to, relative ones resolved.

    Memoised on the source text: every cache key of every task parses the same closure, and
    a sweep worker computes several keys per trial. Parsing is most of that cost, and an
    edited file is a new text, so the memo can never answer for stale code.
    """
    names: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names.add(base)
            # `from lib.x import y` may import a submodule y, or only a name defined in x.
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return frozenset(names)


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def import_closure(entry: str, root: Path | None = None) -> dict[str, Path]:
    """`entry` and every `lib` module it imports, transitively: module name -> source file."""
    root = root or package_root()
    found: dict[str, Path] = {}
    pending = _with_parents(entry)
    while pending:
        name = pending.pop()
        if name in found:
            continue
        path = module_file(name, root)
        found[name] = path
        imported = _imported_names(path.read_text(), name, path.name == "__init__.py")
        for candidate in imported:
            if candidate != PACKAGE and not candidate.startswith(PACKAGE + "."):
                continue
            for module in _with_parents(candidate):
                if module not in found and _exists(module, root):
                    pending.append(module)
    return found


def _exists(name: str, root: Path) -> bool:
    try:
        module_file(name, root)
    except ModuleNotFoundError:
        return False
    return True


def code_version(entries: Iterable[str], root: Path | None = None) -> str:
    """Hash of the sources in the import closures of `entries` (module names under `lib`)."""
    root = root or package_root()
    files: dict[str, Path] = {}
    for entry in entries:
        files.update(import_closure(entry, root))
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode())
        digest.update(files[name].read_bytes())
    return digest.hexdigest()[:VERSION_CHARS]
