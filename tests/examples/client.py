"""The official SDK client as the demo-upstream tests drive it: connect, call, read the result."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp_types import TextContent


@asynccontextmanager
async def connect(url: str) -> AsyncIterator[ClientSession]:
    """An initialized MCP session over Streamable HTTP to ``url``."""
    async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


async def call(session: ClientSession, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The structured result of a call that must succeed."""
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, error_text(result.content)
    structured: dict[str, Any] | None = result.structured_content
    assert structured is not None
    return structured


async def call_error(session: ClientSession, tool: str, arguments: dict[str, Any]) -> str:
    """The message of a call that must fail as a tool error (what the model would read)."""
    result = await session.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    return error_text(result.content)


def error_text(content: list[Any]) -> str:
    return " ".join(block.text for block in content if isinstance(block, TextContent))
