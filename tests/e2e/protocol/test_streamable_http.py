"""MCP Streamable HTTP, spoken by the official SDK client: direct and through mcpfence alike.

Each test that takes ``target`` runs once per mode; the direct run is the reference
for what the proxied run must reproduce (docs/reference/transports.md).
"""

from __future__ import annotations

import json
import re

import anyio
import httpx
import pytest
from mcp.client.session import ClientRequestContext
from mcp_types import ElicitRequestParams, ElicitResult, TextContent
from mcp_types.version import LATEST_HANDSHAKE_VERSION

from tests.clients import (
    MODERN_VERSION,
    SESSION_ID,
    SseEvent,
    connect,
    modern_call,
    modern_headers,
    next_sse_events,
    open_raw_session,
    request,
    response_message,
    send_initialize,
    send_initialized,
    session_headers,
    sse_events,
)
from tests.e2e.protocol.topology import Target, route_path
from tests.e2e.protocol.upstream import RETRY_MILLISECONDS, Upstream
from tests.servers import Proxy

pytestmark = pytest.mark.anyio

TOOLS = {"echo", "slow_progress", "fail", "ask", "confirm", "change_tools", "whoami"}
# Non-ASCII, nesting, floats and nulls: anything a re-serializing proxy could mangle.
ECHO_ARGS = {"message": "héllo ☃ \u2028", "extra": {"n": [1, 2.5, None], "deep": {"ok": True}}}


async def test_initialize_reports_the_upstream_server_and_negotiates_a_version(
    target: Target,
) -> None:
    async with connect(target.url()) as conn:
        assert conn.initialized.server_info.name == "protocol-upstream"
        assert conn.initialized.server_info.version == "1.2.3"
        assert conn.initialized.protocol_version == LATEST_HANDSHAKE_VERSION


async def test_tools_list_returns_every_upstream_tool(target: Target) -> None:
    async with connect(target.url()) as conn:
        listed = await conn.session.list_tools()
    assert {tool.name for tool in listed.tools} == TOOLS
    echo = next(tool for tool in listed.tools if tool.name == "echo")
    assert echo.input_schema["required"] == ["message"]


@pytest.mark.parametrize("variant", ["sse", "json"])
async def test_tools_call_returns_the_upstream_result(target: Target, variant: str) -> None:
    async with connect(target.url(variant)) as conn:
        result = await conn.session.call_tool("echo", ECHO_ARGS)
    assert not result.is_error
    assert result.structured_content == ECHO_ARGS


@pytest.mark.parametrize(
    ("variant", "content_type"), [("sse", "text/event-stream"), ("json", "application/json")]
)
async def test_tools_call_response_keeps_the_upstream_content_type(
    target: Target, variant: str, content_type: str
) -> None:
    async with connect(target.url(variant)) as conn:
        await conn.session.call_tool("echo", ECHO_ARGS)
    answers = conn.answers_to("tools/call")
    assert [r.headers["content-type"].split(";")[0] for r in answers] == [content_type]


async def test_tool_failure_arrives_as_an_error_result(target: Target) -> None:
    async with connect(target.url()) as conn:
        result = await conn.session.call_tool("fail", {"reason": "boom"})
    assert result.is_error
    assert isinstance(result.content[0], TextContent)
    assert "fail" in result.content[0].text


@pytest.mark.parametrize("variant", ["stateless", "stateless-json"])
async def test_stateless_upstream_serves_calls_without_a_session(
    target: Target, variant: str
) -> None:
    async with connect(target.url(variant)) as conn:
        result = await conn.session.call_tool("echo", ECHO_ARGS)
        assert conn.session_ids == set()
    assert result.structured_content == ECHO_ARGS


async def test_progress_reaches_the_client_before_the_tool_finishes(target: Target) -> None:
    upstream = target.upstream()
    arrivals: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        arrivals.append(f"progress {progress:g}/{total:g}")
        upstream.client_saw_progress.set()  # lets the tool go on; it waits for this

    async with connect(target.url()) as conn:
        result = await conn.session.call_tool(
            "slow_progress", {"steps": 3, "delay": 0.01}, progress_callback=on_progress
        )
        arrivals.append("result")
    assert isinstance(result.content[0], TextContent)
    assert result.content[0].text == "done after 3 steps; client saw progress first: True"
    assert arrivals == ["progress 1/3", "progress 2/3", "progress 3/3", "result"]


async def test_a_client_hanging_up_mid_stream_cuts_off_the_upstream_request(
    target: Target, http: httpx.AsyncClient
) -> None:
    upstream, url = target.upstream(), target.url()
    session_id = await open_raw_session(http, url)
    params = {"name": "slow_progress", "arguments": {"steps": 2, "delay": 0}}
    call = request("tools/call", {**params, "_meta": {"progressToken": "hang-up"}})
    try:
        with anyio.fail_after(10):
            async with http.stream("POST", url, json=call, headers=session_headers(session_id)) as sse:
                (first,) = await next_sse_events(sse, 1)
            # Leaving the block closed the connection; the upstream must notice before it answers.
            while not [r for r in upstream.requests if r.hung_up]:
                await anyio.sleep(0.01)
    finally:
        upstream.client_saw_progress.set()  # let the tool finish
    assert json.loads(first["data"])["method"] == "notifications/progress"


async def test_every_response_in_a_session_carries_the_one_session_id(target: Target) -> None:
    async with connect(target.url()) as conn:
        await conn.session.call_tool("echo", ECHO_ARGS)
        assert len(conn.session_ids) == 1


async def test_upstream_receives_the_session_id_the_client_was_given(target: Target) -> None:
    upstream = target.upstream()
    async with connect(target.url()) as conn:
        upstream.requests.clear()
        await conn.session.call_tool("echo", ECHO_ARGS)
        (session_id,) = conn.session_ids
    calls = [r for r in upstream.requests if r.method == "POST"]
    assert calls
    assert {r.header(SESSION_ID) for r in calls} == {session_id}


async def test_upstream_receives_the_negotiated_protocol_version(target: Target) -> None:
    upstream = target.upstream()
    async with connect(target.url()) as conn:
        upstream.requests.clear()
        await conn.session.call_tool("echo", ECHO_ARGS)
    posts = [r for r in upstream.requests if r.method == "POST"]
    assert posts
    assert {r.header("mcp-protocol-version") for r in posts} == {LATEST_HANDSHAKE_VERSION}


async def test_session_delete_ends_the_session(target: Target, http: httpx.AsyncClient) -> None:
    async with connect(target.url()) as conn:
        (session_id,) = conn.session_ids
    deletes = [r for r in conn.responses if r.request.method == "DELETE"]
    assert [r.status_code for r in deletes] == [200]
    after = await http.post(target.url(), json=request("tools/list"), headers=session_headers(session_id))
    assert after.status_code == 404


async def test_unknown_session_id_is_404(target: Target, http: httpx.AsyncClient) -> None:
    response = await http.post(
        target.url(), json=request("tools/list"), headers=session_headers("no-such-session")
    )
    assert response.status_code == 404


async def test_request_without_session_id_is_400(target: Target, http: httpx.AsyncClient) -> None:
    await open_raw_session(http, target.url())
    response = await http.post(target.url(), json=request("tools/list"))
    assert response.status_code == 400


async def test_notification_is_accepted_with_202(target: Target, http: httpx.AsyncClient) -> None:
    session_id = await send_initialize(http, target.url())
    response = await send_initialized(http, target.url(), session_id)
    assert response.status_code == 202
    assert response.content == b""


async def test_raw_tools_call_in_a_session_answers_in_an_event_stream(
    target: Target, http: httpx.AsyncClient
) -> None:
    session_id = await open_raw_session(http, target.url())
    response = await http.post(
        target.url(),
        json=request("tools/call", {"name": "echo", "arguments": ECHO_ARGS}, id=7),
        headers=session_headers(session_id),
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    message = response_message(response)
    assert message["id"] == 7
    assert message["result"]["structuredContent"] == ECHO_ARGS


@pytest.mark.parametrize("variant", ["sse", "stateless-json"])
async def test_a_stateless_protocol_call_is_served_with_its_routing_headers(
    target: Target, http: httpx.AsyncClient, variant: str
) -> None:
    call = modern_call("echo", ECHO_ARGS)
    headers = {**modern_headers("tools/call", "echo"), "mcp-param-region": "eu"}
    response = await http.post(target.url(variant), json=call, headers=headers)
    assert response.status_code == 200
    assert response_message(response)["result"]["structuredContent"] == ECHO_ARGS
    (received,) = target.upstream(variant).requests
    assert [received.header(name) for name in headers] == list(headers.values())


async def test_get_opens_the_session_server_stream(target: Target, http: httpx.AsyncClient) -> None:
    session_id = await open_raw_session(http, target.url())
    headers = {**session_headers(session_id), "accept": "text/event-stream"}
    async with http.stream("GET", target.url(), headers=headers) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.headers[SESSION_ID] == session_id


@pytest.mark.parametrize("variant", ["sse", "stateless-json"])
async def test_get_on_the_stateless_protocol_is_405_with_allow(
    target: Target, http: httpx.AsyncClient, variant: str
) -> None:
    headers = {"accept": "text/event-stream", "mcp-protocol-version": MODERN_VERSION}
    response = await http.get(target.url(variant), headers=headers)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


async def test_a_server_to_client_request_mid_call_is_answered_through_the_stream(
    target: Target,
) -> None:
    async def answer(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        return ElicitResult(action="accept", content={"name": "Ada"})

    async with connect(target.url(), elicitation_callback=answer) as conn:
        result = await conn.session.call_tool("ask", {})
    assert isinstance(result.content[0], TextContent)
    assert result.content[0].text == "hello Ada"


async def resumable_call(http: httpx.AsyncClient, url: str) -> tuple[str, list[SseEvent]]:
    """Call ``echo`` in a fresh session on a resumable upstream; returns the session and events."""
    session_id = await open_raw_session(http, url)
    call = request("tools/call", {"name": "echo", "arguments": ECHO_ARGS})
    response = await http.post(url, json=call, headers=session_headers(session_id))
    assert response.headers["content-type"].startswith("text/event-stream")
    return session_id, list(sse_events(response.text))


async def test_sse_events_keep_their_ids_and_the_priming_event(
    target: Target, http: httpx.AsyncClient
) -> None:
    _, (priming, *messages) = await resumable_call(http, target.url("resumable"))
    assert priming == {"id": priming["id"], "data": "", "retry": str(RETRY_MILLISECONDS)}
    assert [re.fullmatch(r"ev-\d+", event["id"]) is not None for event in messages] == [True]
    assert json.loads(messages[0]["data"])["result"]["structuredContent"] == ECHO_ARGS


async def test_last_event_id_resumes_the_stream_after_that_event(
    target: Target, http: httpx.AsyncClient
) -> None:
    url = target.url("resumable")
    session_id, (priming, *_) = await resumable_call(http, url)
    headers = {**session_headers(session_id), "accept": "text/event-stream"}
    with anyio.fail_after(10):
        async with http.stream(
            "GET", url, headers={**headers, "last-event-id": priming["id"]}
        ) as resumed:
            assert resumed.status_code == 200
            (replayed,) = await next_sse_events(resumed, 1)
    assert json.loads(replayed["data"])["result"]["structuredContent"] == ECHO_ARGS


async def test_last_event_id_reaches_the_upstream_unchanged(
    proxy: Proxy, upstreams: dict[str, Upstream], http: httpx.AsyncClient
) -> None:
    url = proxy.url(route_path("resumable"))
    session_id, (priming, *_) = await resumable_call(http, url)
    headers = {**session_headers(session_id), "accept": "text/event-stream"}
    with anyio.fail_after(10):
        async with http.stream("GET", url, headers={**headers, "last-event-id": priming["id"]}):
            pass
    gets = [r for r in upstreams["resumable"].requests if r.method == "GET"]
    assert [r.header("last-event-id") for r in gets] == [priming["id"]]
