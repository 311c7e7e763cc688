"""What mcpfence has learned about each route's tools from upstream ``tools/list`` answers.

Policies see a tool's annotations (``tool.annotations``) and exposure filters
classify tools by them; both read this catalog, which the policy addon fills as
tool lists pass through. A tool never listed has no annotations: ``{}``. The
catalog also keeps which arguments a tool mirrors into ``Mcp-Param-*`` headers
(2026-07-28 ``x-mcp-header``), so a rewritten call's headers can follow its body.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from mcp.shared.inbound import x_mcp_header_map

EMPTY: Mapping[str, Any] = MappingProxyType({})


class ToolCatalog:
    """Tool name → annotations, per route."""

    def __init__(self) -> None:
        self._routes: dict[str, dict[str, Mapping[str, Any]]] = {}
        self._param_headers: dict[str, dict[str, dict[tuple[str, ...], str]]] = {}
        self._param_schemas: dict[str, dict[str, dict[str, Any]]] = {}

    def learn(self, route: str, tools: Iterable[Any]) -> None:
        known = self._routes.setdefault(route, {})
        for tool in tools:
            if isinstance(tool, dict) and isinstance(tool.get("name"), str):
                annotations = tool.get("annotations")
                if isinstance(annotations, dict):
                    known[tool["name"]] = MappingProxyType(dict(annotations))
                else:
                    known[tool["name"]] = EMPTY
                schema = tool.get("inputSchema")
                mirrored = x_mcp_header_map(schema) if isinstance(schema, dict) else {}
                self._param_headers.setdefault(route, {})[tool["name"]] = mirrored
                if mirrored:
                    assert isinstance(schema, dict)
                    self._param_schemas.setdefault(route, {})[tool["name"]] = schema

    def annotations(self, route: str, tool: str) -> Mapping[str, Any]:
        return self._routes.get(route, {}).get(tool, EMPTY)

    def param_headers(self, route: str, tool: str) -> Mapping[tuple[str, ...], str] | None:
        """Argument path → ``Mcp-Param-`` header token; None when the tool was never listed."""
        return self._param_headers.get(route, {}).get(tool)

    def param_schema(self, route: str, tool: str) -> dict[str, Any] | None:
        """The input schema of a listed tool that mirrors arguments into headers, else None."""
        return self._param_schemas.get(route, {}).get(tool)

    def knows(self, route: str, tool: str) -> bool:
        return tool in self._routes.get(route, {})
