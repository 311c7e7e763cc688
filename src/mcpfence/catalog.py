"""What mcpfence has learned about each route's tools from upstream ``tools/list`` answers.

Policies see a tool's annotations (``tool.annotations``) and exposure filters
classify tools by them; both read this catalog, which the policy addon fills as
tool lists pass through. A tool never listed has no annotations: ``{}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

EMPTY: Mapping[str, Any] = MappingProxyType({})


class ToolCatalog:
    """Tool name → annotations, per route."""

    def __init__(self) -> None:
        self._routes: dict[str, dict[str, Mapping[str, Any]]] = {}

    def learn(self, route: str, tools: Iterable[Any]) -> None:
        known = self._routes.setdefault(route, {})
        for tool in tools:
            if isinstance(tool, dict) and isinstance(tool.get("name"), str):
                annotations = tool.get("annotations")
                if isinstance(annotations, dict):
                    known[tool["name"]] = MappingProxyType(dict(annotations))
                else:
                    known[tool["name"]] = EMPTY

    def annotations(self, route: str, tool: str) -> Mapping[str, Any]:
        return self._routes.get(route, {}).get(tool, EMPTY)

    def knows(self, route: str, tool: str) -> bool:
        return tool in self._routes.get(route, {})
