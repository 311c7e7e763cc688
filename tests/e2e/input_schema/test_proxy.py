"""Arguments are checked against the tool's inputSchema: SDK client → mcpfence → SDK server.

The server coerces (``"false"`` becomes ``False``), so each test also reads the
server's state: a refused call must leave it as it was.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import types

from tests.clients import (
    MCP_HEADERS,
    connect,
    modern_call,
    modern_headers,
    open_raw_session,
    request,
    response_message,
    session_headers,
)
from tests.decision_log import written_lines
from tests.e2e.input_schema import upstream
from tests.e2e.input_schema.upstream import Crm
from tests.servers import Proxy, free_port, run_proxy

pytestmark = pytest.mark.anyio

SCRIPT = upstream.__file__
SCHEMA_POLICY = "Blocked by policy mcpfence-input-schema: "


async def call(proxy: Proxy, tool: str, arguments: dict[str, Any], route: str = "crm") -> tuple[bool, str]:
    async with connect(proxy.url(f"/{route}/mcp")) as conn:
        result = await conn.session.call_tool(tool, arguments)
        return bool(result.is_error), result.content[0].text  # type: ignore[union-attr]


async def raw_call(proxy: Proxy, tool: str, arguments: dict[str, Any]) -> str:
    """A tools/call in a session that never listed the tools; the text of the answer."""
    url = proxy.url("/crm/mcp")
    async with httpx.AsyncClient(headers=MCP_HEADERS, timeout=10) as http:
        session_id = await open_raw_session(http, url)
        params = {"name": tool, "arguments": arguments}
        answer = await http.post(url, json=request("tools/call", params), headers=session_headers(session_id))
    return str(response_message(answer)["result"]["content"][0]["text"])


async def stateless_call(proxy: Proxy, tool: str, arguments: dict[str, Any]) -> str:
    """A 2026-07-28 tools/call (no session, no handshake); the text of the answer."""
    async with httpx.AsyncClient(headers=MCP_HEADERS, timeout=10) as http:
        headers = modern_headers("tools/call", tool)
        answer = await http.post(proxy.url("/crm/mcp"), json=modern_call(tool, arguments), headers=headers)
    return str(response_message(answer)["result"]["content"][0]["text"])


def decision_lines(proxy: Proxy, tool: str, count: int) -> list[dict[str, Any]]:
    """The decision log's records of ``tool``, once ``count`` of them are written."""
    log = proxy.config_path.parent / "decisions.jsonl"
    deadline = time.monotonic() + 10
    while True:
        lines = written_lines(log)
        found = [line for line in lines if line["tool"] == tool]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


async def test_the_string_false_for_a_boolean_is_refused_and_the_contact_stays_opted_in(
    proxy: Proxy, crm: Crm
) -> None:
    is_error, text = await call(proxy, "update_contact", {"id": "100001", "GlobalEmailStatus": "false"})
    assert is_error
    assert text == SCHEMA_POLICY + '/GlobalEmailStatus must be a boolean, got the string "false"'
    assert crm.opted_in == {"100001": True}
    assert crm.received == []


async def test_the_number_0_for_a_boolean_is_refused(proxy: Proxy, crm: Crm) -> None:
    is_error, text = await call(proxy, "update_contact", {"id": "100001", "GlobalEmailStatus": 0})
    assert is_error
    assert text == SCHEMA_POLICY + "/GlobalEmailStatus must be a boolean, got the integer 0"
    assert crm.opted_in == {"100001": True}


async def test_the_string_null_for_a_nullable_boolean_is_refused(proxy: Proxy, crm: Crm) -> None:
    is_error, text = await call(proxy, "set_status", {"id": "100001", "status": "null"})
    assert is_error
    assert text == SCHEMA_POLICY + '/status must be a boolean or null, got the string "null"'
    assert crm.opted_in == {"100001": True}


async def test_the_string_412_for_an_integer_is_refused(proxy: Proxy, crm: Crm) -> None:
    is_error, text = await call(proxy, "start_journey", {"journey_id": "412", "Recipients": []})
    assert is_error
    assert text == SCHEMA_POLICY + '/journey_id must be an integer, got the string "412"'
    assert crm.received == []


async def test_a_string_id_inside_an_array_item_is_refused_at_its_pointer(proxy: Proxy, crm: Crm) -> None:
    recipients = [{"Contact_ID": 7765}, {"Contact_ID": "7766"}]
    is_error, text = await call(proxy, "start_journey", {"journey_id": 412, "Recipients": recipients})
    assert is_error
    assert text == SCHEMA_POLICY + '/Recipients/1/Contact_ID must be an integer, got the string "7766"'
    assert crm.received == []


async def test_a_missing_required_argument_is_named(proxy: Proxy, crm: Crm) -> None:
    is_error, text = await call(proxy, "update_contact", {"GlobalEmailStatus": False})
    assert is_error
    assert text == SCHEMA_POLICY + "/id is required"
    assert crm.opted_in == {"100001": True}


async def test_an_extra_argument_is_refused_when_the_schema_forbids_it(proxy: Proxy, crm: Crm) -> None:
    is_error, text = await call(proxy, "tag_contact", {"id": "100001", "tag": "vip", "Tag": "vip"})
    assert is_error
    assert text == SCHEMA_POLICY + "/Tag is not accepted by this tool; accepted here: id, tag"
    assert crm.received == []


async def test_a_call_that_matches_the_schema_is_forwarded(proxy: Proxy, crm: Crm) -> None:
    recipients = [{"Contact_ID": 7765}]
    is_error, _ = await call(proxy, "start_journey", {"journey_id": 412, "Recipients": recipients})
    assert not is_error
    assert crm.received == [("start_journey", {"journey_id": 412, "Recipients": [7765]})]


async def test_a_mutation_that_breaks_the_type_is_refused(proxy: Proxy, crm: Crm) -> None:
    """The check sees what would be forwarded: the policy's output, not the client's input."""
    is_error, text = await call(proxy, "set_limit", {"limit": 13})
    assert is_error
    assert text == SCHEMA_POLICY + '/limit must be an integer, got the string "thirteen"'
    assert crm.received == []


async def test_a_mutation_that_repairs_the_type_is_forwarded(proxy: Proxy, crm: Crm) -> None:
    is_error, _ = await call(proxy, "update_contact", {"id": "100001", "GlobalEmailStatus": "yes"})
    assert not is_error
    assert crm.received == [("update_contact", {"id": "100001", "GlobalEmailStatus": True})]


async def test_audit_mode_forwards_and_records_the_violation(proxy: Proxy, crm: Crm) -> None:
    is_error, _ = await call(proxy, "set_status", {"id": "100002", "status": "no"}, route="audit")
    assert not is_error
    assert crm.opted_in["100002"] is False  # the SDK server read "no" as false
    [line] = [r for r in decision_lines(proxy, "set_status", 1) if r["route"] == "audit"]
    assert line["decision"] == "audit"
    assert line["violations"] == [
        {"policy": "mcpfence-input-schema", "message": "/status must be a boolean or null, got a string"}
    ]


async def test_off_mode_forwards_without_a_check(proxy: Proxy, crm: Crm) -> None:
    is_error, _ = await call(proxy, "update_contact", {"id": "100001", "GlobalEmailStatus": "false"}, "off")
    assert not is_error
    assert crm.opted_in == {"100001": False}  # what the check exists to prevent


async def test_a_tool_the_upstream_does_not_list_is_refused_under_enforce(proxy: Proxy, crm: Crm) -> None:
    is_error, text = await call(proxy, "delete_everything", {})
    assert is_error
    assert text.startswith(SCHEMA_POLICY + "mcpfence does not know this tool's inputSchema")


async def test_schemas_are_learned_from_the_relayed_list(fresh_proxy: Proxy, crm: Crm) -> None:
    before = crm.tool_lists
    async with connect(fresh_proxy.url("/crm/mcp")) as conn:
        await conn.session.list_tools()
        arguments = {"id": "100001", "GlobalEmailStatus": "false"}
        result = await conn.session.call_tool("update_contact", arguments)
    assert result.is_error
    assert crm.tool_lists == before + 1  # the client's own list: mcpfence did not list again


async def test_without_a_relayed_list_mcpfence_lists_once(fresh_proxy: Proxy, crm: Crm) -> None:
    before = crm.tool_lists
    first = await raw_call(fresh_proxy, "update_contact", {"id": "100001", "GlobalEmailStatus": "false"})
    second = await raw_call(fresh_proxy, "start_journey", {"journey_id": "412", "Recipients": []})
    assert first == SCHEMA_POLICY + '/GlobalEmailStatus must be a boolean, got the string "false"'
    assert second == SCHEMA_POLICY + '/journey_id must be an integer, got the string "412"'
    assert crm.tool_lists == before + 1
    assert crm.opted_in == {"100001": True}


async def test_a_stateless_call_is_checked_after_a_stateless_listing(fresh_proxy: Proxy, crm: Crm) -> None:
    before = crm.tool_lists
    text = await stateless_call(fresh_proxy, "update_contact", {"id": "100001", "GlobalEmailStatus": "false"})
    assert text == SCHEMA_POLICY + '/GlobalEmailStatus must be a boolean, got the string "false"'
    assert crm.tool_lists == before + 1
    assert crm.opted_in == {"100001": True}


async def test_an_upstream_that_cannot_be_listed_fails_closed(tmp_path: Path) -> None:
    dead = {"url": f"http://127.0.0.1:{free_port()}/mcp", "timeout_seconds": 5}
    with run_proxy({"routes": [{"name": "crm", "path": "/crm/mcp", "upstream": dead}]}, tmp_path) as proxy:
        answer = await stateless_call(proxy, "update_contact", {"id": "100001", "GlobalEmailStatus": False})
    assert answer.startswith(SCHEMA_POLICY + "mcpfence does not know this tool's inputSchema")


async def test_a_changed_list_is_relearned_after_list_changed(fresh_proxy: Proxy, crm: Crm) -> None:
    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    async with connect(fresh_proxy.url("/crm/mcp"), message_handler=on_message) as conn:
        await conn.session.list_tools()
        assert not (await conn.session.call_tool("set_limit", {"limit": 50})).is_error
        await conn.session.call_tool("tighten_limits", {})
        with anyio.fail_after(10):
            await changed.wait()  # it passed mcpfence on its way here
        result = await conn.session.call_tool("set_limit", {"limit": 50})
    assert result.is_error
    assert result.content[0].text == SCHEMA_POLICY + "/limit must be at most 10, got 50"  # type: ignore[union-attr]
    assert crm.received == [("set_limit", {"limit": 50})]


async def test_a_stdio_upstream_is_listed_over_a_child_of_its_own(tmp_path: Path) -> None:
    """Hosted routes list over a link of their own, then check calls as relayed ones do."""
    upstream_config = {"command": [sys.executable, SCRIPT]}
    config = {"routes": [{"name": "crm", "path": "/crm/mcp", "upstream": upstream_config}]}
    with run_proxy(config, tmp_path) as stdio_proxy:
        text = await raw_call(stdio_proxy, "update_contact", {"id": "100001", "GlobalEmailStatus": "false"})
    assert text == SCHEMA_POLICY + '/GlobalEmailStatus must be a boolean, got the string "false"'


async def test_a_stateless_denial_says_its_result_is_complete(proxy: Proxy) -> None:
    """2026-07-28 results carry resultType; a denial is a finished tool result."""
    body = modern_call("update_contact", {"id": "100001", "GlobalEmailStatus": "false"})
    async with httpx.AsyncClient(headers=MCP_HEADERS, timeout=10) as http:
        headers = modern_headers("tools/call", "update_contact")
        answer = await http.post(proxy.url("/crm/mcp"), json=body, headers=headers)
    assert response_message(answer)["result"]["resultType"] == "complete"
