"""Policies decide what the upstream receives: official SDK client → mcpfence → SDK server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from mcp.client.session import ClientSession
from mcp.client.sse import sse_client

from tests.clients import MCP_HEADERS, connect, modern_call, modern_headers
from tests.decision_log import written_lines
from tests.e2e.enforcement.conftest import POLICIES, TOKEN, Recorder
from tests.polling import until
from tests.servers import Proxy

pytestmark = pytest.mark.anyio


async def call(proxy: Proxy, tool: str, arguments: dict[str, object]) -> tuple[bool, str]:
    async with connect(proxy.url("/rec/mcp")) as conn:
        session: ClientSession = conn.session
        result = await session.call_tool(tool, arguments)
        return bool(result.is_error), result.content[0].text  # type: ignore[union-attr]


def reloads(admin_port: int, result: str) -> float:
    """How many policy reloads ended with ``result`` (``ok`` or ``error``), from ``/metrics``."""
    text = httpx.get(f"http://127.0.0.1:{admin_port}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("mcpfence_policy_reloads_total{") and f'result="{result}"' in line
    )


async def rewrite(pack: Path, text: str, admin_port: int, result: str) -> None:
    """Write ``pack`` and return once the watcher has reloaded it with ``result``."""
    before = reloads(admin_port, result)
    pack.write_text(text)
    await until(lambda: reloads(admin_port, result) > before)


async def test_a_denied_call_never_reaches_the_upstream(proxy: Proxy, recorder: Recorder) -> None:
    is_error, text = await call(proxy, "set_status", {"status": None})
    assert is_error
    assert text == "Blocked by policy no-null-status: status must not be null"
    assert recorder.calls == []


async def test_a_mutated_call_reaches_the_upstream_mutated(proxy: Proxy, recorder: Recorder) -> None:
    is_error, text = await call(proxy, "add_email", {"email": "  John.Doe@Example.COM "})
    assert not is_error
    assert recorder.calls == [("add_email", {"email": "john.doe@example.com"})]
    assert text == "john.doe@example.com"


async def test_an_audit_violation_reaches_the_upstream_unchanged(proxy: Proxy, recorder: Recorder) -> None:
    is_error, _ = await call(proxy, "add_note", {"note": "a rather long note"})
    assert not is_error
    assert recorder.calls == [("add_note", {"note": "a rather long note"})]


async def test_a_denial_inside_an_sse_stream_reaches_a_legacy_client(
    proxy: Proxy, recorder: Recorder
) -> None:
    """An HTTP+SSE (2024-11-05) client reads every answer from its event stream."""
    async with (
        sse_client(proxy.url("/rec/mcp/sse")) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        result = await session.call_tool("set_status", {"status": None})
    assert result.is_error
    assert result.meta is not None
    assert result.meta["mcpfence/decision"]["decision"] == "deny"
    assert recorder.calls == []


async def test_every_call_is_one_decision_log_line(proxy: Proxy) -> None:
    log = proxy.config_path.parent / "decisions.jsonl"
    before = len(written_lines(log))
    await call(proxy, "set_status", {"status": None})
    [line] = await until(lambda: written_lines(log)[before:])
    assert (line["tool"], line["decision"]) == ("set_status", "deny")
    assert "args" not in line


async def test_an_edited_token_is_refused_quoting_it_to_the_model_but_never_to_the_log(
    proxy: Proxy, recorder: Recorder
) -> None:
    async with connect(proxy.url("/rec/mcp")) as conn:
        await conn.session.call_tool("issue_token", {})
        result = await conn.session.call_tool("use_token", {"token": TOKEN.lower()})
    assert result.is_error
    assert TOKEN in result.content[0].text  # type: ignore[union-attr]
    assert recorder.calls == []
    log = proxy.config_path.parent / "decisions.jsonl"
    await until(lambda: "tokens-verbatim" in log.read_text())
    assert TOKEN not in log.read_text()


async def test_a_reload_with_a_broken_file_keeps_enforcing_the_old_rules(
    proxy: Proxy, policy_dir: Path, admin_port: int, recorder: Recorder
) -> None:
    pack = policy_dir / "pack.yaml"
    try:
        await rewrite(pack, POLICIES.replace("args.status != null", "args.status +"), admin_port, "error")
        is_error, text = await call(proxy, "set_status", {"status": None})
        assert is_error
        assert "no-null-status" in text
        assert recorder.calls == []
    finally:
        await rewrite(pack, POLICIES, admin_port, "ok")


async def test_a_reload_with_a_fixed_rule_is_enforced_without_a_restart(
    proxy: Proxy, policy_dir: Path, admin_port: int, recorder: Recorder
) -> None:
    pack = policy_dir / "pack.yaml"
    try:
        await rewrite(pack, POLICIES.replace("args.status != null", "args.status == true"), admin_port, "ok")
        is_error, _ = await call(proxy, "set_status", {"status": False})
        assert is_error
        assert recorder.calls == []
    finally:
        await rewrite(pack, POLICIES, admin_port, "ok")


async def test_mcp_param_headers_follow_a_mutated_argument(proxy: Proxy, recorder: Recorder) -> None:
    """2026-07-28: the upstream checks Mcp-Param-* against the body it receives."""
    async with connect(proxy.url("/rec/mcp")) as conn:
        await conn.session.list_tools()  # mcpfence learns which argument is mirrored
    call = modern_call("set_region", {"region": "EU"})
    headers = {**MCP_HEADERS, **modern_headers("tools/call", "set_region"), "mcp-param-region": "EU"}
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(proxy.url("/rec/mcp"), json=call, headers=headers)
    assert response.status_code == 200, response.text
    assert recorder.calls == [("set_region", {"region": "eu"})]


async def test_mcp_param_headers_that_disagree_with_the_body_are_400_header_mismatch(
    proxy: Proxy, recorder: Recorder
) -> None:
    """Gateways may route on Mcp-Param-*: mcpfence answers a mismatch as the server must."""
    async with connect(proxy.url("/rec/mcp")) as conn:
        await conn.session.list_tools()
    call = modern_call("set_region", {"region": "eu"})
    headers = {**MCP_HEADERS, **modern_headers("tools/call", "set_region"), "mcp-param-region": "us"}
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(proxy.url("/rec/mcp"), json=call, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32020
    assert recorder.calls == []


async def test_a_result_of_deeply_nested_json_text_reaches_the_client_and_later_calls_work(
    proxy: Proxy, recorder: Recorder
) -> None:
    async with connect(proxy.url("/rec/mcp")) as conn:
        result = await conn.session.call_tool("nested_text", {})
        after = await conn.session.call_tool("use_token", {"token": TOKEN})
    assert not result.is_error
    assert result.content[0].text.startswith("[[[")  # type: ignore[union-attr]
    assert not after.is_error
