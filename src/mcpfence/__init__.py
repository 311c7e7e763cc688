"""mcpfence: a safety-policy reverse proxy for MCP servers."""

__version__ = "0.1.0"

from mcpfence.middleware import PolicyMiddleware  # after __version__, which it imports

__all__ = ["PolicyMiddleware", "__version__"]
