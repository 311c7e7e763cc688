"""Asks an upstream for its tools, for the admin API's "filters leave no tool" check.

This opens a real MCP client session, so it is only ever used off the hot path
(route creation), never per call.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx2
from mcp import types
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from mcpfence.admin.app import ToolInfo

__all__ = ["ToolInfo", "list_upstream_tools"]


async def list_upstream_tools(url: str, headers: Mapping[str, str], timeout: float) -> list[ToolInfo]:
    """Every tool the Streamable HTTP upstream at ``url`` lists, with its annotations."""
    async with (
        httpx2.AsyncClient(headers=dict(headers), timeout=timeout) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        tools: list[ToolInfo] = []
        cursor: str | None = None
        while True:
            params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await session.list_tools(params=params)
            for tool in page.tools:
                hints = tool.annotations
                annotations = hints.model_dump(by_alias=True, exclude_none=True) if hints else None
                tools.append((tool.name, annotations))
            cursor = page.next_cursor
            if not cursor:
                return tools
