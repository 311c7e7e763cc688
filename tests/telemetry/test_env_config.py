"""Telemetry is configured by the standard OTEL_* variables and nothing else.

Exporting runs in a subprocess, exactly as the proxy would start.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from mcpfence.telemetry import Telemetry
from mcpfence.telemetry.exporters import metric_readers, span_exporters
from mcpfence.telemetry.otlp import OTLPSpanExporter as HttpExporter
from tests.telemetry.otlp_receiver import otlp_receiver

ONE_CALL = """
from mcpfence.telemetry import Telemetry
telemetry = Telemetry.setup("from-config")
with telemetry.request_span("tools/call", "send", route="pm") as request:
    request.set_decision("allow", ["p"], [])
    with request.upstream_span():
        pass
telemetry.shutdown()
"""

OTEL_VARIABLES = [name for name in os.environ if name.startswith("OTEL_")]


@pytest.fixture(autouse=True)
def clean_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name)


def run_one_call(**env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", ONE_CALL],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def test_otlp_http_exports_spans_and_metrics_to_the_endpoint() -> None:
    with otlp_receiver() as receiver:
        run_one_call(
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_METRICS_EXPORTER="otlp",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
        )
        [span] = receiver.wait_for(lambda r: r.spans_named("tools/call send"))
        metrics = receiver.wait_for(lambda r: r.metric_names())
    assert span.resource["service.name"] == "from-config"
    assert span.attributes["mcpfence.decision"] == "allow"
    assert {
        "mcpfence.decisions",
        "mcp.server.operation.duration",
        "mcpfence.upstream.duration",
    } <= metrics


def test_otel_service_name_overrides_the_configured_name() -> None:
    with otlp_receiver() as receiver:
        run_one_call(
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=receiver.url + "/v1/traces",
            OTEL_SERVICE_NAME="edge-proxy",
            OTEL_RESOURCE_ATTRIBUTES="deployment.environment.name=staging",
        )
        spans = receiver.wait_for(lambda r: r.spans)
    assert {s.resource["service.name"] for s in spans} == {"edge-proxy"}
    assert {s.resource["deployment.environment.name"] for s in spans} == {"staging"}


def test_console_exporter_prints_spans_to_stdout() -> None:
    output = run_one_call(OTEL_TRACES_EXPORTER="console")
    assert '"name": "tools/call send"' in output


def test_tracing_and_exported_metrics_are_off_without_an_endpoint() -> None:
    telemetry = Telemetry.setup("mcpfence")
    assert not telemetry.tracing
    assert span_exporters() == []
    assert metric_readers() == []
    telemetry.shutdown()


def test_an_endpoint_alone_turns_otlp_export_on() -> None:
    with otlp_receiver() as receiver:
        run_one_call(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url)
        [span] = receiver.wait_for(lambda r: r.spans_named("tools/call send"))
        metrics = receiver.wait_for(lambda r: r.metric_names())
    assert span.attributes["mcpfence.decision"] == "allow"
    assert "mcpfence.decisions" in metrics


def test_none_overrides_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert span_exporters() == []


def test_none_turns_an_exporter_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert span_exporters() == []


def test_exporters_can_be_combined(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp, console")
    assert [type(e) for e in span_exporters()] == [HttpExporter, ConsoleSpanExporter]


def test_grpc_protocol_selects_the_grpc_exporter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    [exporter] = span_exporters()
    assert isinstance(exporter, GrpcExporter)
    exporter.shutdown()


def test_signal_protocol_overrides_the_general_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")
    assert [type(e) for e in span_exporters()] == [HttpExporter]


def test_unknown_exporter_is_an_error_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "zipkin")
    with pytest.raises(ValueError, match="OTEL_METRICS_EXPORTER: unknown exporter 'zipkin'"):
        metric_readers()


def test_unsupported_protocol_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with pytest.raises(ValueError, match="http/json"):
        span_exporters()
