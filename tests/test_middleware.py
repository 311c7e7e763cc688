"""PolicyMiddleware: the official SDK server wrapped in-process, driven by the SDK client."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from mcpfence import PolicyMiddleware
from tests.clients import MCP_HEADERS, connect, request
from tests.decision_log import written_lines
from tests.e2e.enforcement.conftest import POLICIES, Recorder
from tests.servers import serve_asgi
from tests.telemetry.otlp_receiver import OtlpReceiver, otlp_receiver

pytestmark = pytest.mark.anyio

GUIDANCE = """\
---
apiVersion: mcpfence/v1
kind: ToolPolicy
metadata: {name: emails-guidance}
spec:
  match: {tools: [add_email]}
  guidance: "Emails are stored in lower case."
"""


@dataclass
class Fenced:
    """The wrapped server, what it received, and where its telemetry went."""

    url: str
    recorder: Recorder
    decision_log: Path
    receiver: OtlpReceiver

    def decisions(self) -> list[dict[str, Any]]:
        return written_lines(self.decision_log)


@pytest.fixture(scope="module")
def fenced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fenced]:
    directory = tmp_path_factory.mktemp("middleware")
    (directory / "policies.yaml").write_text(POLICIES + GUIDANCE)
    config = {"decision_log": {"path": "decisions.jsonl"}, "telemetry": {"service_name": "fenced"}}
    (directory / "mcpfence.yaml").write_text(yaml.safe_dump(config))
    recorder = Recorder()
    with otlp_receiver() as receiver, pytest.MonkeyPatch.context() as env:
        env.setitem(os.environ, "OTEL_TRACES_EXPORTER", "otlp")
        env.setitem(os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        env.setitem(os.environ, "OTEL_BSP_SCHEDULE_DELAY", "50")
        app = PolicyMiddleware(
            recorder.server().streamable_http_app(),
            policies=[directory / "policies.yaml"],
            route="billing",
            config=directory / "mcpfence.yaml",
        )
        with serve_asgi(app) as base:
            yield Fenced(base + "/mcp", recorder, directory / "decisions.jsonl", receiver)


@pytest.fixture(autouse=True)
def _forget_calls(request: pytest.FixtureRequest) -> None:
    if "fenced" in request.fixturenames:
        request.getfixturevalue("fenced").recorder.calls.clear()


async def call(fenced: Fenced, tool: str, arguments: dict[str, Any]) -> tuple[bool, str]:
    async with connect(fenced.url) as conn:
        result = await conn.session.call_tool(tool, arguments)
        return bool(result.is_error), result.content[0].text  # type: ignore[union-attr]


async def test_an_allowed_call_reaches_the_wrapped_server(fenced: Fenced) -> None:
    is_error, _ = await call(fenced, "set_status", {"status": True})
    assert not is_error
    assert fenced.recorder.calls == [("set_status", {"status": True})]


async def test_a_mutated_call_reaches_the_wrapped_server_mutated(fenced: Fenced) -> None:
    is_error, text = await call(fenced, "add_email", {"email": "  Ann@Example.COM "})
    assert (is_error, text) == (False, "ann@example.com")
    assert fenced.recorder.calls == [("add_email", {"email": "ann@example.com"})]


async def test_a_denied_call_never_reaches_the_wrapped_server(fenced: Fenced) -> None:
    is_error, text = await call(fenced, "set_status", {"status": None})
    assert is_error
    assert text == "Blocked by policy no-null-status: status must not be null"
    assert fenced.recorder.calls == []


async def test_tools_list_carries_the_policies_guidance(fenced: Fenced) -> None:
    async with connect(fenced.url) as conn:
        tools = {tool.name: tool for tool in (await conn.session.list_tools()).tools}
    assert tools["add_email"].description == "Emails are stored in lower case."


async def test_each_call_is_a_decision_log_line_under_the_route_name(fenced: Fenced) -> None:
    await call(fenced, "set_status", {"status": None})
    with anyio.fail_after(10):
        while not any(line["decision"] == "deny" for line in fenced.decisions()):
            await anyio.sleep(0.05)
    line = next(line for line in fenced.decisions() if line["decision"] == "deny")
    assert (line["route"], line["tool"]) == ("billing", "set_status")
    assert [violation["policy"] for violation in line["violations"]] == ["no-null-status"]


async def test_each_call_is_a_server_span_under_the_route_name(fenced: Fenced) -> None:
    await call(fenced, "add_email", {"email": "bob@example.com"})
    spans = await anyio.to_thread.run_sync(
        lambda: fenced.receiver.wait_for(lambda r: r.spans_named("tools/call add_email"))
    )
    assert spans[0].attributes["mcpfence.route"] == "billing"
    assert spans[0].resource["service.name"] == "fenced"


async def test_a_notification_tools_call_is_refused_as_through_the_proxy(fenced: Fenced) -> None:
    notification = {"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "set_status"}}
    async with httpx.AsyncClient() as client:
        response = await client.post(fenced.url, json=notification, headers=MCP_HEADERS)
    assert response.json()["error"]["code"] == -32600
    assert fenced.recorder.calls == []


async def test_a_number_beyond_double_range_is_a_parse_error_before_the_wrapped_server(
    fenced: Fenced,
) -> None:
    params = b'{"name":"set_status","arguments":{"status":1e999}}'
    body = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":' + params + b"}"
    async with httpx.AsyncClient() as client:
        response = await client.post(fenced.url, content=body, headers=MCP_HEADERS)
    assert response.json()["error"]["code"] == -32700
    assert fenced.recorder.calls == []


async def test_a_foreign_origin_is_refused_before_the_wrapped_server(fenced: Fenced) -> None:
    headers = {**MCP_HEADERS, "origin": "https://evil.example"}
    async with httpx.AsyncClient() as client:
        response = await client.post(fenced.url, json=request("tools/list"), headers=headers)
    assert response.status_code == 403


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    yield {"greeting": "started"}


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.state.greeting)


def test_the_wrapped_apps_lifespan_and_other_paths_pass_through() -> None:
    app = Starlette(routes=[Route("/health", health)], lifespan=lifespan)
    with serve_asgi(PolicyMiddleware(app)) as base:
        response = httpx.get(base + "/health")
    assert (response.status_code, response.text) == (200, "started")


async def broken(scope: Any, receive: Any, send: Any) -> None:
    """Starts and stops cleanly; raises on every request."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    raise RuntimeError("the app broke")


def test_a_wrapped_app_that_raises_answers_a_jsonrpc_error() -> None:
    with serve_asgi(PolicyMiddleware(broken)) as base:
        response = httpx.post(base + "/mcp", json=request("tools/list"), headers=MCP_HEADERS)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == -32603
