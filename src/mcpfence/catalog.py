"""What mcpfence has learned about each route's tools from upstream ``tools/list`` answers.

Policies see a tool's annotations (``tool.annotations``) and exposure filters
classify tools by them; both read this catalog, which the policy addon fills as
tool lists pass through. A tool never listed has no annotations: ``{}``. The
catalog also keeps which arguments a tool mirrors into ``Mcp-Param-*`` headers
(2026-07-28 ``x-mcp-header``), so a rewritten call's headers can follow its body.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from mcp.shared.inbound import x_mcp_header_map

EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class _Tool:
    """What one ``tools/list`` entry told us about a tool."""

    annotations: Mapping[str, Any]
    # Argument path → header token, and the schema they came from, when the tool mirrors any.
    mirrored: Mapping[tuple[str, ...], str]
    schema: dict[str, Any] | None


class ToolCatalog:
    """Tool name → what its listing said, per route; a newer listing replaces an older one."""

    def __init__(self) -> None:
        self._routes: dict[str, dict[str, _Tool]] = {}

    def learn(self, route: str, tools: Iterable[Any]) -> None:
        known = self._routes.setdefault(route, {})
        for tool in tools:
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                continue
            annotations = tool.get("annotations")
            schema = tool.get("inputSchema")
            mirrored = x_mcp_header_map(schema) if isinstance(schema, dict) else {}
            known[tool["name"]] = _Tool(
                MappingProxyType(dict(annotations)) if isinstance(annotations, dict) else EMPTY,
                mirrored,
                schema if mirrored and isinstance(schema, dict) else None,
            )

    def annotations(self, route: str, tool: str) -> Mapping[str, Any]:
        known = self._routes.get(route, {}).get(tool)
        return known.annotations if known is not None else EMPTY

    def param_headers(self, route: str, tool: str) -> Mapping[tuple[str, ...], str] | None:
        """Argument path → ``Mcp-Param-`` header token; None when the tool was never listed."""
        known = self._routes.get(route, {}).get(tool)
        return known.mirrored if known is not None else None

    def param_schema(self, route: str, tool: str) -> dict[str, Any] | None:
        """The input schema of a listed tool that mirrors arguments into headers, else None."""
        known = self._routes.get(route, {}).get(tool)
        return known.schema if known is not None else None

    def knows(self, route: str, tool: str) -> bool:
        return tool in self._routes.get(route, {})
