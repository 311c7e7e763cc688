"""How MCP messages get in and out: HTTP framing, SSE, upstream clients."""
