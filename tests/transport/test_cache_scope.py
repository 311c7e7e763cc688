"""``cacheScope`` on lists mcpfence changed (MCP 2026-07-28)."""

from __future__ import annotations

from typing import Any

from mcpfence.cache_scope import CacheScopedPipeline
from mcpfence.pipeline import BaseAddon, Context, Flow

UPSTREAM_TOOLS = [{"name": "send_email", "description": "Send.", "inputSchema": {"type": "object"}}]


class Annotate(BaseAddon):
    """Changes every tool list, as policy guidance and exposure filters do."""

    def response(self, flow: Flow) -> None:
        assert flow.response is not None
        result = flow.response["result"]
        tools = [{**tool, "description": "Send. Lowercase the address."} for tool in result["tools"]]
        flow.response = {**flow.response, "result": {**result, "tools": tools}}


def answered(addons: list[Any], result: dict[str, Any], version: str = "2026-07-28") -> dict[str, Any]:
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    flow = Flow(Context(route="r", protocol_version=version), request)
    flow.response = {"jsonrpc": "2.0", "id": 1, "result": result}
    CacheScopedPipeline(addons).response(flow)
    assert flow.response is not None
    out: dict[str, Any] = flow.response["result"]
    return out


def test_a_list_mcpfence_changed_becomes_private_and_keeps_its_ttl() -> None:
    result = answered([Annotate()], {"tools": UPSTREAM_TOOLS, "ttlMs": 60000, "cacheScope": "public"})
    assert result["cacheScope"] == "private"
    assert result["ttlMs"] == 60000


def test_an_unchanged_list_keeps_the_servers_scope() -> None:
    result = answered([BaseAddon()], {"tools": UPSTREAM_TOOLS, "ttlMs": 60000, "cacheScope": "public"})
    assert result["cacheScope"] == "public"


def test_a_changed_list_of_a_handshake_revision_gets_no_cache_fields() -> None:
    result = answered([Annotate()], {"tools": UPSTREAM_TOOLS}, version="2025-11-25")
    assert "cacheScope" not in result
