"""Metrics: decisions, request and upstream durations, reloads, and the Prometheus endpoint."""

from __future__ import annotations

import httpx
import pytest

from mcpfence.telemetry import Telemetry
from tests.servers import serve_asgi
from tests.telemetry.conftest import Recorded


def test_each_violated_policy_counts_one_decision(recorded: Recorded) -> None:
    with recorded.telemetry.request_span("tools/call", "send", route="pm") as request:
        request.set_decision("deny", ["a", "b", "c"], ["a", "b"])
    points = recorded.points("mcpfence.decisions")
    assert sorted((attrs["policy"], point.value) for attrs, point in points) == [("a", 1), ("b", 1)]
    assert {(attrs["route"], attrs["tool"], attrs["decision"]) for attrs, _ in points} == {
        ("pm", "send", "deny")
    }


def test_decision_without_violations_counts_once_with_empty_policy(recorded: Recorded) -> None:
    for _ in range(2):
        with recorded.telemetry.request_span("tools/call", "send", route="pm") as request:
            request.set_decision("mutate", ["lowercase"], [])
    [(attrs, point)] = recorded.points("mcpfence.decisions")
    assert attrs == {"route": "pm", "tool": "send", "decision": "mutate", "policy": ""}
    assert point.value == 2


def test_request_duration_is_recorded_per_method_route_tool_and_error(recorded: Recorded) -> None:
    with recorded.telemetry.request_span("tools/call", "send", route="pm") as request:
        request.set_error("tool_error")
    [(attrs, point)] = recorded.points("mcp.server.operation.duration")
    assert attrs == {
        "mcp.method.name": "tools/call",
        "mcpfence.route": "pm",
        "gen_ai.tool.name": "send",
        "error.type": "tool_error",
    }
    assert point.count == 1
    assert point.sum >= 0


def test_request_duration_uses_second_sized_buckets(recorded: Recorded) -> None:
    with recorded.telemetry.request_span("ping", route="pm"):
        pass
    [(_, point)] = recorded.points("mcp.server.operation.duration")
    assert point.explicit_bounds[:3] == (0.005, 0.01, 0.025)


def test_upstream_duration_is_recorded_with_its_error_type(recorded: Recorded) -> None:
    with (
        recorded.telemetry.request_span("tools/call", "send", route="pm") as request,
        request.upstream_span() as upstream,
    ):
        upstream.set_error(-32603)
    [(attrs, point)] = recorded.points("mcpfence.upstream.duration")
    assert attrs == {"mcp.method.name": "tools/call", "mcpfence.route": "pm", "error.type": "-32603"}
    assert point.count == 1


def test_metrics_are_recorded_when_tracing_is_off(untraced: Recorded) -> None:
    with untraced.telemetry.request_span("tools/call", "send", route="pm") as request:
        request.set_decision("allow")
        with request.upstream_span():
            pass
    assert len(untraced.points("mcpfence.decisions")) == 1
    assert len(untraced.points("mcp.server.operation.duration")) == 1
    assert len(untraced.points("mcpfence.upstream.duration")) == 1


def test_policy_reloads_are_counted_by_result(recorded: Recorded) -> None:
    recorded.telemetry.record_policy_reload(ok=True)
    recorded.telemetry.record_policy_reload(ok=True)
    recorded.telemetry.record_policy_reload(ok=False)
    counts = {a["result"]: p.value for a, p in recorded.points("mcpfence.policy.reloads")}
    assert counts == {"ok": 2, "error": 1}


def test_metrics_app_serves_prometheus_text(recorded: Recorded) -> None:
    with recorded.telemetry.request_span("tools/call", "send", route="pm") as request:
        request.set_decision("deny", ["p"], ["p"])
    with serve_asgi(recorded.telemetry.metrics_app()) as url:
        response = httpx.get(url + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'mcpfence_decisions_total{decision="deny"' in response.text
    assert "mcp_server_operation_duration_seconds_bucket{" in response.text


def test_metrics_app_needs_the_prometheus_reader() -> None:
    with pytest.raises(RuntimeError, match="prometheus"):
        Telemetry().metrics_app()
