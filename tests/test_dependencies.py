"""What ``src`` imports is what the package declares, so an installed wheel runs."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _imported_modules() -> set[str]:
    found: set[str] = set()
    for file in (ROOT / "src" / "mcpfence").rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"mcpfence"}


def _normal(name: str) -> str:
    return name.lower().replace("_", "-")


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {_normal(Requirement(text).name) for text in project["dependencies"]}


def test_every_third_party_module_src_imports_is_a_declared_dependency() -> None:
    declared = _declared()
    owners = packages_distributions()

    undeclared = {
        module: owners.get(module)
        for module in _imported_modules()
        if not declared & {_normal(name) for name in owners.get(module, [module])}
    }

    assert undeclared == {}

