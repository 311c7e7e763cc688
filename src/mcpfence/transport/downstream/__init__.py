"""What faces the MCP client: the ASGI app, its routes, and the sessions mcpfence hosts.

See docs/explanation/architecture.md for the walk of one request through these modules.
"""
