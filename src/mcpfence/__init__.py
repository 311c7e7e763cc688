"""mcpfence: a safety-policy reverse proxy for MCP servers."""

__version__ = "0.1.0"
