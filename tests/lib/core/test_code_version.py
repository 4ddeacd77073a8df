"""Code versions follow a module's import closure, read from source without importing it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lib.core.code_version import code_version, import_closure, package_root

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def probe(tmp_path: Path) -> Path:
    """A small `lib` tree: step -> helper (at module level) and -> lazy (inside a function)."""
    root = tmp_path / "lib"
    (root / "domain").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "domain" / "__init__.py").write_text("")
    (root / "domain" / "step.py").write_text(
        "import json\n"
        "from lib.domain.helper import scale\n\n"
        "def run():\n"
        "    from . import lazy\n"
        "    return lazy.value(scale(2))\n"
    )
    (root / "domain" / "helper.py").write_text(
        "from lib import shared\n\ndef scale(x):\n    return 2 * x\n"
    )
    (root / "domain" / "lazy.py").write_text("def value(x):\n    return x\n")
    (root / "shared.py").write_text("UNIT = 1\n")
    (root / "unrelated.py").write_text("X = 1\n")
    return root


def test_the_closure_holds_direct_lazy_relative_and_transitive_imports(probe: Path) -> None:
    assert sorted(import_closure("lib.domain.step", probe)) == [
        "lib",
        "lib.domain",
        "lib.domain.helper",
        "lib.domain.lazy",
        "lib.domain.step",
        "lib.shared",
    ]


@pytest.mark.parametrize(
    "edited", ["domain/helper.py", "domain/lazy.py", "shared.py", "__init__.py"]
)
def test_editing_a_module_in_the_closure_changes_the_version(probe: Path, edited: str) -> None:
    before = code_version(["lib.domain.step"], probe)
    (probe / edited).write_text((probe / edited).read_text() + "\n# edited\n")
    assert code_version(["lib.domain.step"], probe) != before


def test_editing_a_module_outside_the_closure_keeps_the_version(probe: Path) -> None:
    before = code_version(["lib.domain.step"], probe)
    (probe / "unrelated.py").write_text("X = 2\n")
    assert code_version(["lib.domain.step"], probe) == before


def test_a_missing_entry_module_is_named(probe: Path) -> None:
    with pytest.raises(ModuleNotFoundError, match="lib.domain.nothing"):
        code_version(["lib.domain.nothing"], probe)


def test_the_real_steps_cover_the_modules_their_hand_kept_lists_missed() -> None:
    # The energy table step reads cells through the table-file readers (once `lib.workbook`,
    # missing from the list its cache key was built from); siamese training needs the IDX
    # reader and the pairs.
    assert "lib.core.table_files" in import_closure("lib.energy.table")
    assert {"lib.siamese.idx", "lib.siamese.pairs"} <= set(import_closure("lib.siamese.train"))
    assert not any(name.startswith("lib.siamese") for name in import_closure("lib.energy.train"))
    assert package_root() == REPO_ROOT / "lib"


def test_computing_a_version_imports_neither_the_step_nor_tensorflow() -> None:
    script = (
        "import sys\n"
        "from lib.core.code_version import code_version\n"
        "code_version(['lib.energy.train', 'lib.siamese.evaluate'])\n"
        "heavy = ('tensorflow', 'keras', 'lib.energy.train')\n"
        "print(sorted(m for m in sys.modules if m in heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT, check=True
    )
    assert done.stdout.strip() == "[]"
