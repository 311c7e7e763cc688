"""What faces the MCP server: HTTP clients (pooled, in-process), message links, the hub.

See docs/explanation/architecture.md for the walk of one request through these modules.
"""
