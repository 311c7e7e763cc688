"""What each MCP protocol revision supports, in one table.

The transports and addons ask this module rather than comparing version strings, so
a new revision is one row here. See docs/reference/transports.md for what each
feature means on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Revision:
    """One protocol revision and the features the proxy treats differently by revision."""

    version: str
    # Transport: "sse" is the HTTP+SSE transport (GET /sse, POST /messages);
    # "streamable_http" is one endpoint answering POSTs with JSON or an SSE stream.
    transport: str
    # A POST body may be a JSON-RPC batch (an array); removed in 2025-06-18.
    batches: bool
    # The server hands out an Mcp-Session-Id; without sessions every request stands alone.
    sessions: bool
    # Requests carry Mcp-Method, Mcp-Name and Mcp-Param-* headers that must match the body.
    routing_headers: bool
    # A stateless answer may be a stream of JSON lines rather than one document.
    json_lines: bool
    # Cacheable results (lists, resources/read) carry cacheScope and ttlMs.
    cache_scope: bool
    # Results say what they are (``resultType``).
    typed_results: bool


REVISIONS: Final = {
    revision.version: revision
    for revision in (
        Revision("2024-11-05", "sse", batches=True, sessions=True, routing_headers=False,
                 json_lines=False, cache_scope=False, typed_results=False),
        Revision("2025-03-26", "streamable_http", batches=True, sessions=True, routing_headers=False,
                 json_lines=False, cache_scope=False, typed_results=False),
        Revision("2025-06-18", "streamable_http", batches=False, sessions=True, routing_headers=False,
                 json_lines=False, cache_scope=False, typed_results=False),
        Revision("2025-11-25", "streamable_http", batches=False, sessions=True, routing_headers=False,
                 json_lines=False, cache_scope=False, typed_results=False),
        Revision("2026-07-28", "streamable_http", batches=False, sessions=False, routing_headers=True,
                 json_lines=True, cache_scope=True, typed_results=True),
    )
}

# Versions with each feature. An unknown revision ("": none declared yet) may batch,
# as the oldest revisions could; it has none of the newer features.
BATCH_VERSIONS: Final = frozenset({""} | {v for v, r in REVISIONS.items() if r.batches})
STATELESS_VERSIONS: Final = frozenset(v for v, r in REVISIONS.items() if not r.sessions)
ROUTING_HEADER_VERSIONS: Final = frozenset(v for v, r in REVISIONS.items() if r.routing_headers)
JSON_LINES_VERSIONS: Final = frozenset(v for v, r in REVISIONS.items() if r.json_lines)
CACHE_SCOPE_VERSIONS: Final = frozenset(v for v, r in REVISIONS.items() if r.cache_scope)
TYPED_RESULT_VERSIONS: Final = frozenset(v for v, r in REVISIONS.items() if r.typed_results)
# The revision the HTTP+SSE transport speaks (its last one).
LEGACY_SSE_VERSION: Final = max(v for v, r in REVISIONS.items() if r.transport == "sse")

# Where a 2026-07-28 request, which has no handshake, names its revision: in ``params._meta``.
PROTOCOL_VERSION_META: Final = "io.modelcontextprotocol/protocolVersion"

# Methods that name what they act on, and the params key holding that name: the
# Mcp-Name header mirrors it (2026-07-28) and a request's span is named after it.
NAME_BEARING: Final = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
