"""Imports go one way: no cycles between packages, and the transport's upstream side never
reaches back into its downstream side (docs/explanation/architecture.md)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "mcpfence"


def _modules() -> dict[str, Path]:
    found = {}
    for file in PACKAGE.rglob("*.py"):
        name = ".".join(file.relative_to(SRC).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = file
    return found


MODULES = _modules()


def _imports(file: Path) -> Iterator[str]:
    """The mcpfence modules ``file`` imports at module level (``if TYPE_CHECKING:`` included)."""
    for node in ast.parse(file.read_text()).body:
        for statement in node.body if isinstance(node, ast.If) else [node]:
            if isinstance(statement, ast.ImportFrom) and statement.module and not statement.level:
                for alias in statement.names:
                    name = f"{statement.module}.{alias.name}"
                    yield name if name in MODULES else statement.module
            elif isinstance(statement, ast.Import):
                yield from (alias.name for alias in statement.names)


def _group(module: str) -> str:
    """``mcpfence.access.guard`` belongs to ``mcpfence.access``; a top-level module is its own."""
    parts = module.split(".")
    return ".".join(parts[:2]) if (PACKAGE / parts[1]).is_dir() else module


def _package_graph() -> dict[str, set[str]]:
    """Which package imports which, the package root aside (it only re-exports the middleware)."""
    graph: dict[str, set[str]] = {}
    for module, file in MODULES.items():
        if module == "mcpfence":
            continue
        for imported in _imports(file):
            if imported.startswith("mcpfence.") and _group(imported) != _group(module):
                graph.setdefault(_group(module), set()).add(_group(imported))
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle in ``graph`` as the packages along it, or [] when there is none."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        state[node] = "done"
        path.pop()
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def _importers_of(prefix: str, among: str) -> dict[str, list[str]]:
    return {
        module: sorted(i for i in _imports(file) if i.startswith(prefix))
        for module, file in MODULES.items()
        if module.startswith(among) and any(i.startswith(prefix) for i in _imports(file))
    }


def test_no_two_packages_import_each_other_even_through_others() -> None:
    assert _cycle(_package_graph()) == []


def test_the_upstream_side_of_the_transport_imports_nothing_of_the_downstream_side() -> None:
    assert _importers_of("mcpfence.transport.downstream", among="mcpfence.transport.upstream") == {}


def test_access_rules_import_nothing_of_the_transport() -> None:
    assert _importers_of("mcpfence.transport", among="mcpfence.access") == {}
