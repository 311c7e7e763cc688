"""How MCP messages get in and out: ``downstream`` faces clients, ``upstream`` faces servers.

Shared by both: HTTP framing (``http``), header rules, SSE and JSON-lines codecs.
See docs/explanation/architecture.md.
"""
