"""The MCP server behind every transport test, built with the official SDK.

The same tools are served over stdio (run this file as a script), legacy
HTTP+SSE (``sse_app``) and Streamable HTTP, so each transport pair is checked
against identical behaviour.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import SamplingMessage, TextContent
from pydantic import BaseModel, Field


class Answer(BaseModel):
    answer: str


def build_server() -> MCPServer:
    server = MCPServer("transport-upstream", version="0.7.0")

    @server.tool()
    def echo(message: str) -> str:
        """Return the message unchanged."""
        return message

    @server.tool()
    def region(region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})]) -> str:
        """Return the region, which 2026-07-28 clients mirror into an Mcp-Param-Region header."""
        return region

    @server.tool()
    async def count(steps: int, ctx: Context) -> str:
        """Report progress once per step, then finish."""
        for step in range(1, steps + 1):
            await ctx.report_progress(step, steps)
        return f"counted to {steps}"

    @server.tool()
    async def ask(question: str, ctx: Context) -> str:
        """Elicit an answer from the client's user."""
        result = await ctx.elicit(question, Answer)
        answer = result.data.answer if result.action == "accept" and result.data else ""
        return f"{result.action}: {answer}"

    @server.tool()
    async def sample(prompt: str, ctx: Context) -> str:
        """Ask the client's model to complete ``prompt``."""
        message = SamplingMessage(role="user", content=TextContent(type="text", text=prompt))
        result = await ctx.session.create_message([message], max_tokens=16, related_request_id=ctx.request_id)
        content = result.content
        return content.text if isinstance(content, TextContent) else repr(content)

    @server.tool()
    def pid() -> int:
        """The serving process, so tests can tell children apart."""
        return os.getpid()

    @server.tool()
    def environment(names: list[str]) -> dict[str, str | None]:
        """The values of environment variables ``names`` in the serving process."""
        return {name: os.environ.get(name) for name in names}

    @server.tool()
    def shout(text: str) -> str:
        """Write ``text`` to stderr."""
        print(text, file=sys.stderr, flush=True)
        return "shouted"

    @server.tool()
    def crash() -> str:
        """Die mid-call, as a buggy stdio server does."""
        os._exit(3)

    return server


if __name__ == "__main__":
    build_server().run("stdio")
