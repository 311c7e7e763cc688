"""What mcpfence has learned about each route's tools from upstream ``tools/list`` answers.

Policies see a tool's annotations (``tool.annotations``) and input schema
(``tool.inputSchema``), exposure filters classify tools by their annotations, and
the built-in argument check validates every call against the schema; all read
this catalog, which the policy addon fills as tool lists pass through. A tool
never listed has no annotations: ``{}``. The catalog also keeps which arguments a
tool mirrors into ``Mcp-Param-*`` headers (2026-07-28 ``x-mcp-header``), so a
rewritten call's headers can follow its body.

Listings are kept per route (the latest one any session saw, or the one
mcpfence fetched itself) and per session, because an upstream may list different
tools, or the same tool with another schema, to different sessions. A session
that listed is judged by its own listing; one that did not, by the route's.
``notifications/tools/list_changed`` forgets both, so the next call relists.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from mcp.shared.inbound import x_mcp_header_map

from mcpfence.policy.argschema import InputSchema, compile_input_schema

EMPTY: Mapping[str, Any] = MappingProxyType({})
MAX_SESSIONS: Final = 10_000  # sessions whose own listing is kept; the oldest fall back to the route's


@dataclass(frozen=True)
class _Tool:
    """What one ``tools/list`` entry told us about a tool."""

    annotations: Mapping[str, Any]
    # Argument path → header token, and the schema they came from, when the tool mirrors any.
    mirrored: Mapping[tuple[str, ...], str]
    schema: dict[str, Any] | None
    # The compiled inputSchema; None when the entry had none (calls then fail closed).
    input_schema: InputSchema | None


def _record(tool: dict[str, Any]) -> _Tool:
    annotations = tool.get("annotations")
    schema = tool.get("inputSchema")
    mirrored = x_mcp_header_map(schema) if isinstance(schema, dict) else {}
    return _Tool(
        MappingProxyType(dict(annotations)) if isinstance(annotations, dict) else EMPTY,
        mirrored,
        schema if mirrored and isinstance(schema, dict) else None,
        compile_input_schema(schema) if isinstance(schema, dict) else None,
    )


class ToolCatalog:
    """Tool name → what its listing said, per route and per session (see the module docstring)."""

    def __init__(self) -> None:
        self._routes: dict[str, dict[str, _Tool]] = {}
        self._sessions: OrderedDict[tuple[str, str], dict[str, _Tool]] = OrderedDict()

    def learn(self, route: str, tools: Iterable[Any], session: str = "", *, page: bool = False) -> None:
        """Take in a ``tools/list`` answer; ``page``: it continues an earlier one (a cursor).

        The route's listing only grows (a page never hides the tools of another page);
        a session's own listing restarts with each first page.
        """
        records = {
            tool["name"]: _record(tool)
            for tool in tools
            if isinstance(tool, dict) and isinstance(tool.get("name"), str)
        }
        known = self._routes.setdefault(route, {})
        for name, record in records.items():
            if known.get(name) == record:
                records[name] = known[name]  # sessions told the same share one record
        known.update(records)
        if session:
            before = self._sessions.pop((route, session), {})
            self._sessions[(route, session)] = {**before, **records} if page else records
            if len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)

    def forget(self, route: str, session: str = "") -> None:
        """The upstream's list changed: what it said before no longer holds."""
        self._routes.pop(route, None)
        if session:
            self._sessions.pop((route, session), None)

    def listed(self, route: str, session: str = "") -> bool:
        """Whether a listing for this session, or for the route, is known."""
        return route in self._routes or (route, session) in self._sessions

    def _tool(self, route: str, tool: str, session: str = "") -> _Tool | None:
        if session:
            own = self._sessions.get((route, session))
            if own is not None and tool in own:
                return own[tool]
        return self._routes.get(route, {}).get(tool)

    def input_schema(self, route: str, tool: str, session: str = "") -> InputSchema | None:
        """The tool's compiled inputSchema as this session was told it; None when unknown."""
        known = self._tool(route, tool, session)
        return known.input_schema if known is not None else None

    def annotations(self, route: str, tool: str, session: str = "") -> Mapping[str, Any]:
        known = self._tool(route, tool, session)
        return known.annotations if known is not None else EMPTY

    def param_headers(self, route: str, tool: str) -> Mapping[tuple[str, ...], str] | None:
        """Argument path → ``Mcp-Param-`` header token; None when the tool was never listed."""
        known = self._tool(route, tool)
        return known.mirrored if known is not None else None

    def param_schema(self, route: str, tool: str) -> dict[str, Any] | None:
        """The input schema of a listed tool that mirrors arguments into headers, else None."""
        known = self._tool(route, tool)
        return known.schema if known is not None else None

    def knows(self, route: str, tool: str) -> bool:
        return self._tool(route, tool) is not None
