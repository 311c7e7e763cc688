"""A ``tools/call`` is parsed once, as the client sent it."""

from __future__ import annotations

from mcpfence.pipeline import Context, Flow
from mcpfence.toolcall import ToolCallRequest, parse_tool_call


def call(params: object) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}


def test_a_call_names_its_tool_and_arguments() -> None:
    assert parse_tool_call(call({"name": "t", "arguments": {"a": 1}})) == ToolCallRequest("t", {"a": 1})


def test_omitted_arguments_are_an_empty_object() -> None:
    assert parse_tool_call(call({"name": "t"})) == ToolCallRequest("t", {})


def test_arguments_that_are_not_an_object_are_none() -> None:
    assert parse_tool_call(call({"name": "t", "arguments": "a=1"})) == ToolCallRequest("t", None)


def test_a_call_without_a_string_name_is_no_tool_call() -> None:
    assert parse_tool_call(call({"name": 7, "arguments": {}})) is None


def test_other_methods_are_no_tool_call() -> None:
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"name": "t"}}
    assert parse_tool_call(listing) is None


def test_a_flow_keeps_the_call_as_sent_when_an_addon_rewrites_the_request() -> None:
    flow = Flow(Context("r"), call({"name": "t", "arguments": {"a": 1}}))
    flow.request = call({"name": "t", "arguments": {"a": 2}})
    assert flow.tool_call == ToolCallRequest("t", {"a": 1})
