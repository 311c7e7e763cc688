"""The exposure addon hides filtered tools from lists and refuses calls to them."""

from __future__ import annotations

from typing import Any

from mcpfence.access.exposure import Exposure
from mcpfence.addons.exposure import ExposureAddon
from mcpfence.catalog import ToolCatalog
from mcpfence.pipeline import Context, Flow
from mcpfence.policy.decision import Decision

TOOLS = [
    {"name": "list_contacts", "inputSchema": {}},
    {"name": "create_contact", "inputSchema": {}},
    {"name": "purge", "inputSchema": {}, "annotations": {"readOnlyHint": True}},
]


def read_only_addon(catalog: ToolCatalog | None = None) -> ExposureAddon:
    return ExposureAddon(Exposure.from_filters(["read"], None, {}), catalog or ToolCatalog())


def flow(method: str, params: dict[str, Any]) -> Flow:
    return Flow(Context(route="crm"), {"jsonrpc": "2.0", "id": 7, "method": method, "params": params})


def test_tools_list_answer_keeps_only_exposed_tools() -> None:
    listing = flow("tools/list", {})
    listing.response = {"jsonrpc": "2.0", "id": 7, "result": {"tools": TOOLS, "nextCursor": "c2"}}
    read_only_addon().response(listing)
    assert listing.response["result"] == {"tools": [TOOLS[0], TOOLS[2]], "nextCursor": "c2"}


def test_call_to_a_filtered_tool_is_answered_as_a_denial() -> None:
    call = flow("tools/call", {"name": "create_contact", "arguments": {"email": "a@example.com"}})
    read_only_addon(listed_catalog()).request(call)
    message = "tool 'create_contact' is a write tool; this route exposes only: read"
    assert call.answered_locally
    assert call.response == {
        "jsonrpc": "2.0",
        "id": 7,
        "result": {
            "isError": True,
            "content": [{"type": "text", "text": f"Blocked by policy route-filter: {message}"}],
            "_meta": {
                "mcpfence/decision": {
                    "decision": "deny",
                    "violations": [{"policy": "route-filter", "message": message}],
                }
            },
        },
    }
    assert isinstance(call.decision, Decision)


def listed_catalog() -> ToolCatalog:
    catalog = ToolCatalog()
    catalog.learn("crm", TOOLS)
    return catalog


def test_call_to_an_exposed_tool_passes_untouched() -> None:
    call = flow("tools/call", {"name": "list_contacts", "arguments": {}})
    read_only_addon(listed_catalog()).request(call)
    assert call.response is None


def test_call_to_a_tool_never_listed_is_refused_because_its_kind_is_unknown() -> None:
    call = flow("tools/call", {"name": "list_contacts", "arguments": {}})
    read_only_addon().request(call)
    assert call.answered_locally
    assert "call tools/list first" in call.response["result"]["content"][0]["text"]  # type: ignore[index]


def test_calls_are_classified_with_annotations_from_the_catalog() -> None:
    call = flow("tools/call", {"name": "purge", "arguments": {}})
    read_only_addon(listed_catalog()).request(call)
    assert call.response is None
