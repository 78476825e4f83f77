"""The house rules of the package's layout, checked rather than hoped for: module and class sizes, every
shared module under the shared layer's import contract, every folder shipped in the wheel."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import tomllib
from conftest import REPO

PACKAGE = REPO / "pyspark_kernel"
MAX_MODULE_LINES = 320
MAX_CLASS_LINES = 130
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def modules() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if "__pycache__" not in path.parts)


@pytest.mark.parametrize("path", modules(), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_no_module_over_320_lines_and_no_class_over_130(path: Path) -> None:
    text = path.read_text()
    lines = len(text.splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(REPO)} has {lines} lines: split it by what its parts do"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef):
            span = node.end_lineno - node.lineno + 1  # type: ignore[operator]
            assert span <= MAX_CLASS_LINES, f"class {node.name} in {path.relative_to(REPO)} spans {span} lines"


def test_every_top_level_module_is_under_the_shared_layers_contract() -> None:
    """A module at the top is shared by the kernel, the server and the command line, so it may import
    none of them: a new one must join the contract that says so (pyproject.toml)."""
    top_level = {f"pyspark_kernel.{path.stem}" for path in PACKAGE.glob("*.py") if not path.stem.startswith("__")}
    contracts = PYPROJECT["tool"]["importlinter"]["contracts"]
    shared = next(contract for contract in contracts if "pyspark_kernel.kernel" in contract.get("forbidden_modules", []))
    assert top_level == set(shared["source_modules"])


def test_every_package_folder_is_shipped() -> None:
    """setuptools lists packages by hand here: a folder missing from the list is missing from the wheel."""
    folders = {".".join(path.parent.relative_to(REPO).parts) for path in PACKAGE.rglob("__init__.py") if "__pycache__" not in path.parts}
    assert folders <= set(PYPROJECT["tool"]["setuptools"]["packages"])
