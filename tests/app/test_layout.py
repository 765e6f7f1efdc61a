"""The house plan holds: small modules, and a shared package both runtimes can import."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from bot.core.settings import PROJECT_ROOT

SOURCE_PACKAGES = (
    "actions", "bot", "connectors", "fakes", "kefu_shared", "knowledge_index", "nlu_bench",
    "rasa_addons",
)  # fmt: skip
MAX_MODULE_LINES = 800
SHARED_MAY_IMPORT = {"yaml"}
"""Besides the standard library: `kefu_shared` runs in the Rasa runtime and the app runtime."""


def _sources() -> list[Path]:
    return sorted(
        path
        for package in SOURCE_PACKAGES
        for path in (PROJECT_ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    )


def _imported_top_levels(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_every_source_module_is_at_most_800_lines() -> None:
    sizes = {path: len(path.read_text("utf-8").splitlines()) for path in _sources()}
    assert sizes, "no sources found"
    too_long = {
        str(path.relative_to(PROJECT_ROOT)): lines
        for path, lines in sizes.items()
        if lines > MAX_MODULE_LINES
    }
    assert not too_long


def test_the_shared_package_uses_only_the_standard_library_and_pyyaml() -> None:
    modules = sorted((PROJECT_ROOT / "kefu_shared").glob("*.py"))
    assert len(modules) >= 2
    for path in modules:
        outside = {
            name
            for name in _imported_top_levels(path)
            if name not in sys.stdlib_module_names and name not in SHARED_MAY_IMPORT
        }
        assert not outside, f"{path.name} imports {sorted(outside)}"
