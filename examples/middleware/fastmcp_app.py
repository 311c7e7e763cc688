"""A FastMCP server's HTTP app, fenced by mcpfence in-process.

    uvicorn examples.middleware.fastmcp_app:app --port 8000    # MCP at http://127.0.0.1:8000/mcp
"""

from __future__ import annotations

from fastmcp import FastMCP

from examples.middleware.billing import POLICIES, refund
from mcpfence import PolicyMiddleware

mcp = FastMCP("billing")
mcp.tool(refund)

app = PolicyMiddleware(mcp.http_app(), policies=[POLICIES], route="billing")
