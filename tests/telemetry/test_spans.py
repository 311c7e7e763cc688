"""The SERVER span per request and its policy and upstream children."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind, StatusCode

from mcpfence.telemetry import Telemetry
from tests.telemetry.conftest import Recorded

CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"
CLIENT_TRACEPARENT = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"
HEADER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
HEADER_SPAN = "00f067aa0ba902b7"
HEADER_TRACEPARENT = f"00-{HEADER_TRACE}-{HEADER_SPAN}-01"


def call(telemetry: Telemetry, **context: str) -> None:
    with telemetry.request_span(
        "tools/call",
        "send_email",
        route="postmark",
        session_id="sess-1",
        protocol_version="2025-11-25",
        request_id=7,
        **context,
    ) as request:
        request.set_decision("allow", ["p1"], [])


def test_tools_call_span_is_a_server_span_named_for_the_tool(recorded: Recorded) -> None:
    call(recorded.telemetry)
    span = recorded.span("tools/call send_email")
    assert span.kind is SpanKind.SERVER


def test_tools_call_span_has_the_mcp_semantic_convention_attributes(recorded: Recorded) -> None:
    call(recorded.telemetry)
    attributes = dict(recorded.span("tools/call send_email").attributes or {})
    assert attributes == {
        "mcp.method.name": "tools/call",
        "mcp.session.id": "sess-1",
        "mcp.protocol.version": "2025-11-25",
        "jsonrpc.request.id": "7",
        "gen_ai.tool.name": "send_email",
        "gen_ai.operation.name": "execute_tool",
        "mcpfence.route": "postmark",
        "mcpfence.decision": "allow",
        "mcpfence.policies.matched": ("p1",),
        "mcpfence.policies.violated": (),
    }


def test_other_methods_are_named_for_the_method_without_tool_attributes(
    recorded: Recorded,
) -> None:
    with recorded.telemetry.request_span("tools/list", route="postmark", request_id="a"):
        pass
    attributes = dict(recorded.span("tools/list").attributes or {})
    assert attributes["jsonrpc.request.id"] == "a"
    assert "gen_ai.tool.name" not in attributes
    assert "gen_ai.operation.name" not in attributes


def test_meta_traceparent_is_the_parent_even_when_a_header_is_present(
    recorded: Recorded,
) -> None:
    call(
        recorded.telemetry,
        meta_traceparent=CLIENT_TRACEPARENT,
        header_traceparent=HEADER_TRACEPARENT,
    )
    span = recorded.span("tools/call send_email")
    assert format(span.context.trace_id, "032x") == CLIENT_TRACE
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == CLIENT_SPAN
    assert span.parent.is_remote


def test_header_traceparent_is_the_parent_without_meta(recorded: Recorded) -> None:
    call(recorded.telemetry, header_traceparent=HEADER_TRACEPARENT)
    span = recorded.span("tools/call send_email")
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == HEADER_SPAN


def test_malformed_meta_traceparent_falls_back_to_the_header(recorded: Recorded) -> None:
    call(recorded.telemetry, meta_traceparent="00-zz-yy-01", header_traceparent=HEADER_TRACEPARENT)
    span = recorded.span("tools/call send_email")
    assert format(span.context.trace_id, "032x") == HEADER_TRACE


def test_tracestate_from_meta_is_kept(recorded: Recorded) -> None:
    call(recorded.telemetry, meta_traceparent=CLIENT_TRACEPARENT, meta_tracestate="vendor=abc")
    span = recorded.span("tools/call send_email")
    assert span.context.trace_state.get("vendor") == "abc"


def test_request_without_trace_context_starts_a_new_trace(recorded: Recorded) -> None:
    call(recorded.telemetry)
    assert recorded.span("tools/call send_email").parent is None


def test_trace_id_is_the_spans_trace_id_in_hex(recorded: Recorded) -> None:
    with recorded.telemetry.request_span(
        "tools/call", "x", route="r", meta_traceparent=CLIENT_TRACEPARENT
    ) as request:
        assert request.trace_id == CLIENT_TRACE


def test_policy_span_is_an_internal_child_of_the_request(recorded: Recorded) -> None:
    with (
        recorded.telemetry.request_span("tools/call", "send_email", route="postmark") as request,
        request.policy_span(),
    ):
        pass
    server = recorded.span("tools/call send_email")
    policy = recorded.span("mcpfence.policy", SpanKind.INTERNAL)
    assert policy.parent is not None
    assert policy.parent.span_id == server.context.span_id


def test_failing_policy_evaluation_marks_the_policy_span_failed(recorded: Recorded) -> None:
    with (
        pytest.raises(RuntimeError),
        recorded.telemetry.request_span("tools/call", "t", route="r") as request,
        request.policy_span(),
    ):
        raise RuntimeError("cel crashed")
    policy = recorded.span("mcpfence.policy", SpanKind.INTERNAL)
    assert policy.status.status_code is StatusCode.ERROR
    assert [event.name for event in policy.events] == ["exception"]


def test_upstream_span_is_a_client_child_of_the_request(recorded: Recorded) -> None:
    with (
        recorded.telemetry.request_span("tools/call", "send_email", route="postmark") as request,
        request.upstream_span(),
    ):
        pass
    server = recorded.span("tools/call send_email")
    client = recorded.span("tools/call send_email", SpanKind.CLIENT)
    assert client.parent is not None
    assert client.parent.span_id == server.context.span_id
    assert client.context.trace_id == server.context.trace_id


def test_upstream_headers_and_meta_carry_the_upstream_spans_context(recorded: Recorded) -> None:
    with (
        recorded.telemetry.request_span(
            "tools/call", "send_email", route="postmark", meta_traceparent=CLIENT_TRACEPARENT
        ) as request,
        request.upstream_span() as upstream,
    ):
        headers, meta = dict(upstream.headers), dict(upstream.meta)
    client = recorded.span("tools/call send_email", SpanKind.CLIENT)
    assert headers == meta
    _, trace_id, span_id, _ = headers["traceparent"].split("-")
    assert (trace_id, span_id) == (CLIENT_TRACE, format(client.context.span_id, "016x"))


def test_denied_call_is_an_error_span_typed_tool_error(recorded: Recorded) -> None:
    with (
        recorded.telemetry.request_span("tools/call", "send_email", route="postmark") as request,
        request.policy_span(),
    ):
        request.set_decision("deny", ["no-external", "lowercase"], ["no-external"])
    server = recorded.span("tools/call send_email")
    assert server.status.status_code is StatusCode.ERROR
    assert server.attributes is not None
    assert server.attributes["error.type"] == "tool_error"
    assert server.attributes["mcpfence.decision"] == "deny"
    assert server.attributes["mcpfence.policies.violated"] == ("no-external",)
    assert [s.kind for s in recorded.spans()] == [SpanKind.INTERNAL, SpanKind.SERVER]


def test_audit_decision_leaves_the_span_unfailed(recorded: Recorded) -> None:
    with recorded.telemetry.request_span("tools/call", "t", route="r") as request:
        request.set_decision("audit", ["watch"], ["watch"])
    assert recorded.span("tools/call t").status.status_code is StatusCode.UNSET


def test_jsonrpc_error_code_is_the_error_type_and_status_code(recorded: Recorded) -> None:
    with recorded.telemetry.request_span("tools/call", "t", route="r") as request:
        request.set_error(-32602, "bad params")
    span = recorded.span("tools/call t")
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "bad params"
    assert span.attributes is not None
    assert span.attributes["error.type"] == "-32602"
    assert span.attributes["rpc.response.status_code"] == "-32602"


def test_tool_error_result_has_no_status_code(recorded: Recorded) -> None:
    with recorded.telemetry.request_span("tools/call", "t", route="r") as request:
        request.set_error("tool_error")
    attributes = recorded.span("tools/call t").attributes or {}
    assert attributes["error.type"] == "tool_error"
    assert "rpc.response.status_code" not in attributes


def test_upstream_failure_marks_the_client_span_failed(recorded: Recorded) -> None:
    with recorded.telemetry.request_span("tools/call", "t", route="r") as request:
        with request.upstream_span() as upstream:
            upstream.set_error(-32603, "upstream unreachable")
        request.set_error(-32603, "upstream unreachable")
    client = recorded.span("tools/call t", SpanKind.CLIENT)
    assert client.status.status_code is StatusCode.ERROR
    assert (client.attributes or {})["error.type"] == "-32603"


def test_exception_escaping_the_request_is_recorded(recorded: Recorded) -> None:
    with pytest.raises(TimeoutError), recorded.telemetry.request_span("ping", route="r"):
        raise TimeoutError("slow")
    span = recorded.span("ping")
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "TimeoutError"
    assert [event.name for event in span.events] == ["exception"]


def test_without_tracing_nothing_is_recorded_or_propagated(untraced: Recorded) -> None:
    with untraced.telemetry.request_span(
        "tools/call", "t", route="r", meta_traceparent=CLIENT_TRACEPARENT
    ) as request:
        with request.policy_span() as policy:
            request.set_decision("allow", ["p"], [])
        with request.upstream_span() as upstream:
            pass
    assert not request.span.is_recording()
    assert not policy.is_recording()
    assert request.trace_id == ""
    assert upstream.headers == {}
    assert untraced.spans() == []


def test_request_span_can_be_ended_outside_a_with_block(recorded: Recorded) -> None:
    request = recorded.telemetry.request_span("tools/call", "t", route="r")
    upstream = request.upstream_span()
    upstream.end()
    request.end(ConnectionError("reset"))
    server = recorded.span("tools/call t")
    assert server.end_time is not None
    assert (server.attributes or {})["error.type"] == "ConnectionError"
    assert recorded.span("tools/call t", SpanKind.CLIENT).end_time is not None


def test_unsampled_request_still_propagates_its_context_upstream() -> None:
    telemetry = Telemetry(tracer_provider=TracerProvider(sampler=ALWAYS_OFF))
    with (
        telemetry.request_span(
            "tools/call", "t", route="r", header_traceparent=HEADER_TRACEPARENT
        ) as request,
        request.upstream_span() as upstream,
    ):
        pass
    _, trace_id, _, flags = upstream.headers["traceparent"].split("-")
    assert (trace_id, flags) == (HEADER_TRACE, "00")
