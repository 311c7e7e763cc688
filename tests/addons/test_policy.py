"""The policy addon: decisions on tools/call, guidance on tools/list, memory of answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mcpfence import jsonrpc
from mcpfence.addons.policy import PolicyAddon, PolicyHolder
from mcpfence.catalog import ToolCatalog
from mcpfence.pipeline import Context, Flow
from mcpfence.policy import load_policy_set
from mcpfence.session import SessionMemory

POLICY = """\
apiVersion: mcpfence/v1
kind: ToolPolicy
metadata: {name: no-null-status}
spec:
  match: {tools: [set_status]}
  validations:
    - expression: "args.status != null"
      message: "status must not be null"
  guidance: "Never send a null status."
"""


@pytest.fixture
def addon(tmp_path: Path) -> PolicyAddon:
    (tmp_path / "p.yaml").write_text(POLICY)
    holder = PolicyHolder(load_policy_set([tmp_path]))
    return PolicyAddon(holder, ToolCatalog(), SessionMemory())


def flow(method: str, params: dict[str, Any]) -> Flow:
    request = {"jsonrpc": "2.0", "id": 3, "method": method, "params": params}
    return Flow(Context(route="r", session_id="s1"), request)


def test_a_denied_call_is_answered_as_a_tool_error(addon: PolicyAddon) -> None:
    call = flow("tools/call", {"name": "set_status", "arguments": {"status": None}})
    addon.request(call)
    assert call.answered_locally
    assert call.response is not None
    assert call.response["result"]["isError"] is True
    assert call.response["result"]["content"][0]["text"] == (
        "Blocked by policy no-null-status: status must not be null"
    )


def test_a_call_without_a_tool_name_is_invalid_params(addon: PolicyAddon) -> None:
    call = flow("tools/call", {"arguments": {}})
    addon.request(call)
    assert call.response is not None
    assert call.response["error"]["code"] == jsonrpc.INVALID_PARAMS


def test_a_call_whose_arguments_are_not_an_object_is_invalid_params(addon: PolicyAddon) -> None:
    call = flow("tools/call", {"name": "set_status", "arguments": ["on"]})
    addon.request(call)
    assert call.response is not None
    assert call.response["error"]["code"] == jsonrpc.INVALID_PARAMS


def test_guidance_is_appended_to_the_matching_tools_description(addon: PolicyAddon) -> None:
    listing = flow("tools/list", {})
    tools = [{"name": "set_status", "description": "Sets it."}, {"name": "other", "description": "x"}]
    listing.response = jsonrpc.result_response(3, {"tools": tools})
    addon.response(listing)
    assert listing.response["result"]["tools"] == [
        {"name": "set_status", "description": "Sets it.\n\nNever send a null status."},
        {"name": "other", "description": "x"},
    ]


def test_list_entries_that_are_not_tools_pass_through_untouched(addon: PolicyAddon) -> None:
    listing = flow("tools/list", {})
    odd: list[Any] = ["text", {"description": "no name"}, {"name": ["set_status"]}]
    listing.response = jsonrpc.result_response(3, {"tools": odd})
    addon.response(listing)
    assert listing.response["result"]["tools"] == odd


ONCE_PER_SESSION = """\
apiVersion: mcpfence/v1
kind: ToolPolicy
metadata: {name: once-per-session}
spec:
  match: {tools: [set_status]}
  validations:
    - expression: "!session.calls.exists(c, c.tool == 'set_status')"
"""


def addon_with(policy: str, directory: Path) -> PolicyAddon:
    (directory / "p.yaml").write_text(policy)
    return PolicyAddon(PolicyHolder(load_policy_set([directory])), ToolCatalog(), SessionMemory())


def answered(addon: PolicyAddon) -> Flow:
    call = flow("tools/call", {"name": "set_status", "arguments": {"status": True}})
    addon.request(call)
    call.response = jsonrpc.result_response(3, {"content": [], "structuredContent": {"status": True}})
    addon.response(call)
    return call


def test_a_forwarded_call_and_its_result_are_remembered_in_the_session(tmp_path: Path) -> None:
    addon = addon_with(ONCE_PER_SESSION, tmp_path)
    answered(addon)
    state = addon.memory.get(addon.memory.key("r", "s1", ""))
    assert list(state.calls) == [
        {"tool": "set_status", "args": {"status": True}, "ok": True, "result": {"status": True}}
    ]


def test_a_route_whose_policies_never_read_the_session_remembers_nothing(addon: PolicyAddon) -> None:
    answered(addon)
    assert not addon.memory.get(addon.memory.key("r", "s1", "")).calls


def test_a_newer_listing_replaces_what_the_catalog_knew_of_a_tool() -> None:
    catalog = ToolCatalog()
    mirrored = {"type": "object", "properties": {"region": {"type": "string", "x-mcp-header": "Region"}}}
    catalog.learn("r", [{"name": "t", "inputSchema": mirrored, "annotations": {"readOnlyHint": True}}])
    catalog.learn("r", [{"name": "t", "inputSchema": {"type": "object"}}])
    assert catalog.param_schema("r", "t") is None
    assert catalog.param_headers("r", "t") == {}
    assert catalog.annotations("r", "t") == {}
