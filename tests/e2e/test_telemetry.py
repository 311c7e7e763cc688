"""End to end: a real SDK client, mcpfence as a subprocess, a real MCPServer, a real OTLP receiver.

mcpfence is configured for telemetry only through OTEL_* variables; these tests
check what an operator sees in the tracing backend and in the decision log.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import yaml
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver import MCPServer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.servers import free_port, run_proxy, serve_asgi
from tests.telemetry.otlp_receiver import OtlpReceiver, ReceivedSpan, otlp_receiver

CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"
HEADER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
HEADER_SPAN = "00f067aa0ba902b7"
SECRET = "the-launch-code-7741"

POLICIES = [
    {
        "apiVersion": "mcpfence/v1",
        "kind": "ToolPolicy",
        "metadata": {"name": "lowercase-recipient"},
        "spec": {
            "match": {"tools": ["send_email"]},
            "mutations": [{"path": "/to", "expression": "args.to.lowerAscii()"}],
        },
    },
    {
        "apiVersion": "mcpfence/v1",
        "kind": "ToolPolicy",
        "metadata": {"name": "internal-recipients-only"},
        "spec": {
            "match": {"tools": ["send_email"]},
            "validations": [
                {
                    "expression": "args.to.endsWith('@example.com')",
                    "message": "only @example.com recipients",
                }
            ],
        },
    },
]


@dataclass(frozen=True)
class Forwarded:
    """A tools/call as the upstream received it."""

    tool: str
    arguments: dict[str, Any]
    header_traceparent: str | None
    meta_traceparent: str | None


class RecordToolCalls:
    """ASGI middleware recording every tools/call body and its traceparent header."""

    def __init__(self, app: ASGIApp, calls: list[Forwarded]) -> None:
        self.app = app
        self.calls = calls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        chunks: list[bytes] = []

        async def recording_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    self._record(headers.get("traceparent"), b"".join(chunks))
            return message

        await self.app(scope, recording_receive, send)

    def _record(self, traceparent: str | None, body: bytes) -> None:
        request = json.loads(body)
        if isinstance(request, dict) and request.get("method") == "tools/call":
            params = request["params"]
            meta = params.get("_meta") or {}
            self.calls.append(
                Forwarded(params["name"], params["arguments"], traceparent, meta.get("traceparent"))
            )


def build_upstream(calls: list[Forwarded]) -> ASGIApp:
    server = MCPServer("mail-upstream")

    @server.tool()
    def send_email(to: str, subject: str, body: str) -> str:
        """Pretend to send an email."""
        return f"sent to {to}"

    @server.tool()
    def explode(reason: str) -> str:
        """Always fail, so the result is isError."""
        raise RuntimeError(reason)

    return RecordToolCalls(server.streamable_http_app(), calls)


@dataclass
class Stack:
    receiver: OtlpReceiver
    forwarded: list[Forwarded]
    decision_log: Path
    results: dict[str, Any] = field(default_factory=dict)
    proxy_output: str = ""

    def server_span(self, name: str, trace_id: str | None = None) -> ReceivedSpan:
        found = [s for s in self.receiver.spans_named(name) if trace_id in (None, s.trace_id)]
        assert len(found) == 1, f"expected one SERVER span {name!r}, got {found}"
        return found[0]

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        return [s for s in self.receiver.spans if s.trace_id == trace_id]

    def decision_lines(self) -> list[dict[str, Any]]:
        text = self.decision_log.read_text("utf-8") if self.decision_log.exists() else ""
        return [json.loads(line) for line in text.splitlines()]


def email(to: str) -> dict[str, str]:
    return {"to": to, "subject": "plans", "body": SECRET}


async def make_calls(url: str, dead_url: str, results: dict[str, Any]) -> None:
    async with AsyncExitStack() as stack:
        read, write = await stack.enter_async_context(streamable_http_client(url))
        session = await stack.enter_async_context(ClientSession(read, write))
        await session.initialize()
        meta = {"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"}
        results["allowed"] = await session.call_tool(
            "send_email", email("ann@example.com"), meta=meta
        )
        results["mutated"] = await session.call_tool("send_email", email("Bob@Example.COM"))
        results["denied"] = await session.call_tool("send_email", email("eve@evil.test"))
        results["failing"] = await session.call_tool("explode", {"reason": SECRET})

    headers = {"traceparent": f"00-{HEADER_TRACE}-{HEADER_SPAN}-01"}
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(httpx2.AsyncClient(headers=headers, timeout=10))
        read, write = await stack.enter_async_context(streamable_http_client(url, http_client=client))
        session = await stack.enter_async_context(ClientSession(read, write))
        await session.initialize()
        results["header"] = await session.call_tool("send_email", email("hdr@example.com"))

    results["unreachable"] = await failed_initialize(dead_url)


async def failed_initialize(url: str) -> Exception | None:
    """Initialize a session that must fail (a dead upstream); what the SDK raised."""
    with anyio.fail_after(20):
        try:
            async with AsyncExitStack() as stack:
                read, write = await stack.enter_async_context(streamable_http_client(url))
                session = await stack.enter_async_context(ClientSession(read, write))
                await session.initialize()
        except Exception as exc:  # the SDK raises however the failure surfaced
            return exc
    return None


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("e2e")
    (directory / "policies.yaml").write_text(yaml.safe_dump_all(POLICIES))
    forwarded: list[Forwarded] = []
    with otlp_receiver() as receiver, serve_asgi(build_upstream(forwarded)) as upstream:
        result = Stack(receiver, forwarded, directory / "decisions.jsonl")
        config = {
            "policies": ["policies.yaml"],
            "decision_log": {"path": str(result.decision_log)},
            "telemetry": {"service_name": "mcpfence-e2e"},
            "routes": [
                {"name": "mail", "path": "/mail/mcp", "upstream": {"url": upstream + "/mcp"}},
                {
                    "name": "dead",
                    "path": "/dead/mcp",
                    "upstream": {"url": f"http://127.0.0.1:{free_port()}/mcp"},
                },
            ],
        }
        env = {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_BSP_SCHEDULE_DELAY": "50",
            "OTEL_METRIC_EXPORT_INTERVAL": "200",
        }
        with run_proxy(config, directory, env) as proxy:
            anyio.run(make_calls, proxy.url("/mail/mcp"), proxy.url("/dead/mcp"), result.results)
            receiver.wait_for(lambda r: len(r.spans_named("tools/call send_email")) >= 4)
            receiver.wait_for(lambda r: "mcpfence.decisions" in r.metric_names())
            deadline = time.monotonic() + 10
            while len(result.decision_lines()) < 5 and time.monotonic() < deadline:
                time.sleep(0.05)
            result.proxy_output = proxy.stop()
        yield result


def forwarded_to(stack: Stack, recipient: str) -> Forwarded:
    [call] = [c for c in stack.forwarded if c.arguments.get("to") == recipient]
    return call


def test_every_tool_call_is_a_server_span_named_for_its_tool(stack: Stack) -> None:
    assert len(stack.receiver.spans_named("tools/call send_email")) == 4
    assert len(stack.receiver.spans_named("tools/call explode")) == 1


def test_spans_carry_the_mcp_semantic_convention_attributes(stack: Stack) -> None:
    attributes = stack.server_span("tools/call send_email", CLIENT_TRACE).attributes
    assert attributes["mcp.method.name"] == "tools/call"
    assert attributes["gen_ai.tool.name"] == "send_email"
    assert attributes["gen_ai.operation.name"] == "execute_tool"
    assert attributes["mcpfence.route"] == "mail"
    assert attributes["mcp.session.id"]
    assert attributes["mcp.protocol.version"]
    assert attributes["jsonrpc.request.id"]
    assert attributes["mcpfence.decision"] == "allow"  # already lowercase: nothing to change
    assert set(attributes["mcpfence.policies.matched"]) == {
        "lowercase-recipient",
        "internal-recipients-only",
    }
    assert attributes["mcpfence.policies.violated"] == []


def test_spans_are_reported_under_the_configured_service_name(stack: Stack) -> None:
    assert {span.resource["service.name"] for span in stack.receiver.spans} == {"mcpfence-e2e"}


def test_meta_traceparent_parents_the_server_span(stack: Stack) -> None:
    span = stack.server_span("tools/call send_email", CLIENT_TRACE)
    assert span.parent_span_id == CLIENT_SPAN


def test_header_traceparent_parents_a_call_without_meta(stack: Stack) -> None:
    span = stack.server_span("tools/call send_email", HEADER_TRACE)
    assert span.parent_span_id == HEADER_SPAN


def test_forwarded_call_has_policy_and_upstream_children(stack: Stack) -> None:
    server = stack.server_span("tools/call send_email", CLIENT_TRACE)
    children = {(s.kind, s.name) for s in stack.trace(CLIENT_TRACE) if s.parent_span_id == server.span_id}
    assert children == {("INTERNAL", "mcpfence.policy"), ("CLIENT", "tools/call send_email")}


def test_traceparent_reaches_upstream_in_header_and_meta(stack: Stack) -> None:
    [client] = [s for s in stack.trace(CLIENT_TRACE) if s.kind == "CLIENT"]
    call = forwarded_to(stack, "ann@example.com")
    assert call.header_traceparent is not None
    assert call.header_traceparent == call.meta_traceparent
    _, trace_id, span_id, _ = call.header_traceparent.split("-")
    assert (trace_id, span_id) == (CLIENT_TRACE, client.span_id)


def test_mutated_call_is_recorded_as_mutate_and_forwarded_mutated(stack: Stack) -> None:
    call = forwarded_to(stack, "bob@example.com")
    assert call.meta_traceparent is not None
    trace_id = call.meta_traceparent.split("-")[1]
    span = stack.server_span("tools/call send_email", trace_id)
    assert span.attributes["mcpfence.decision"] == "mutate"
    assert span.status == "UNSET"


def test_denied_call_is_an_error_span_without_upstream_child(stack: Stack) -> None:
    assert stack.results["denied"].is_error
    [denied] = [
        s
        for s in stack.receiver.spans_named("tools/call send_email")
        if s.attributes.get("mcpfence.decision") == "deny"
    ]
    assert denied.status == "ERROR"
    assert denied.attributes["error.type"] == "tool_error"
    assert denied.attributes["mcpfence.policies.violated"] == ["internal-recipients-only"]
    assert [s.kind for s in stack.trace(denied.trace_id)] == ["INTERNAL", "SERVER"]
    assert all(c.arguments.get("to") != "eve@evil.test" for c in stack.forwarded)


def test_failing_tool_is_a_tool_error_span(stack: Stack) -> None:
    assert stack.results["failing"].is_error
    span = stack.server_span("tools/call explode")
    assert span.status == "ERROR"
    assert span.attributes["error.type"] == "tool_error"


def test_unreachable_upstream_is_a_jsonrpc_error_span(stack: Stack) -> None:
    assert "unreachable" in stack.results
    [span] = [
        s
        for s in stack.receiver.spans
        if s.attributes.get("mcpfence.route") == "dead" and s.kind == "SERVER"
    ]
    assert span.status == "ERROR"
    assert span.attributes["error.type"] == "-32603"
    assert span.attributes["rpc.response.status_code"] == "-32603"


def test_no_argument_value_appears_on_any_span(stack: Stack) -> None:
    exported = repr([(s.name, s.attributes, s.events) for s in stack.receiver.spans])
    for value in (SECRET, "ann@example.com", "eve@evil.test", "Bob@Example.COM", "plans"):
        assert value not in exported


def test_decision_metrics_are_exported_by_policy(stack: Stack) -> None:
    denials = [
        p.attributes
        for p in stack.receiver.points
        if p.metric == "mcpfence.decisions" and p.attributes.get("decision") == "deny"
    ]
    assert {
        "route": "mail",
        "tool": "send_email",
        "decision": "deny",
        "policy": "internal-recipients-only",
    } in denials


def test_decision_log_has_one_line_per_tool_call(stack: Stack) -> None:
    lines = stack.decision_lines()
    assert [(line["tool"], line["decision"]) for line in lines] == [
        ("send_email", "allow"),
        ("send_email", "mutate"),
        ("send_email", "deny"),
        ("explode", "allow"),
        ("send_email", "allow"),
    ]


def test_decision_log_lines_match_their_spans(stack: Stack) -> None:
    [first, *_] = stack.decision_lines()
    assert first["trace_id"] == CLIENT_TRACE
    assert first["route"] == "mail"
    span = stack.server_span("tools/call send_email", CLIENT_TRACE)
    assert first["session_id"] == span.attributes["mcp.session.id"]
    assert first["policy_revision"]


def test_decision_log_records_mutations_and_violations(stack: Stack) -> None:
    _, mutated, denied, *_ = stack.decision_lines()
    assert mutated["mutations"] == [{"policy": "lowercase-recipient", "path": "/to"}]
    assert denied["violations"] == [
        {"policy": "internal-recipients-only", "message": "only @example.com recipients"}
    ]


def test_decision_log_hashes_the_forwarded_arguments(stack: Stack) -> None:
    _, mutated, *_ = stack.decision_lines()
    canonical = json.dumps(email("bob@example.com"), sort_keys=True, separators=(",", ":"))
    assert mutated["args_sha256"] == hashlib.sha256(canonical.encode()).hexdigest()


def test_decision_log_holds_no_argument_values_by_default(stack: Stack) -> None:
    text = stack.decision_log.read_text("utf-8")
    assert SECRET not in text
    assert all("args" not in line for line in stack.decision_lines())
