"""Exporters chosen by the standard ``OTEL_*`` environment variables.

``OTEL_TRACES_EXPORTER`` and ``OTEL_METRICS_EXPORTER`` take a comma-separated list of
``otlp``, ``console`` and ``none`` (the default here: a proxy should not phone a
collector nobody configured). ``otlp`` speaks ``OTEL_EXPORTER_OTLP_{SIGNAL}_PROTOCOL``
or ``OTEL_EXPORTER_OTLP_PROTOCOL`` (``http/protobuf`` by default, or ``grpc``); the
exporters themselves read the endpoint, headers, timeout and compression variables.
Exporter modules are imported only when chosen, so an unused gRPC stack costs nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TypeVar

from opentelemetry.sdk.metrics.export import MetricExporter, MetricReader
from opentelemetry.sdk.trace.export import SpanExporter

_Exporter = TypeVar("_Exporter")

_PROTOCOLS = ("http/protobuf", "grpc")


def _otlp_http_spans() -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def _otlp_grpc_spans() -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def _console_spans() -> SpanExporter:
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    return ConsoleSpanExporter()


def _otlp_http_metrics() -> MetricExporter:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter()


def _otlp_grpc_metrics() -> MetricExporter:
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter()


def _console_metrics() -> MetricExporter:
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

    return ConsoleMetricExporter()


_SPAN_EXPORTERS: Mapping[str, Callable[[], SpanExporter]] = {
    "otlp:http/protobuf": _otlp_http_spans,
    "otlp:grpc": _otlp_grpc_spans,
    "console": _console_spans,
}

_METRIC_EXPORTERS: Mapping[str, Callable[[], MetricExporter]] = {
    "otlp:http/protobuf": _otlp_http_metrics,
    "otlp:grpc": _otlp_grpc_metrics,
    "console": _console_metrics,
}


def span_exporters() -> list[SpanExporter]:
    """The span exporters ``OTEL_TRACES_EXPORTER`` asks for; empty means tracing is off."""
    return _build("TRACES", _SPAN_EXPORTERS)


def metric_readers() -> list[MetricReader]:
    """Periodic readers for the exporters ``OTEL_METRICS_EXPORTER`` asks for.

    The reader takes its interval from ``OTEL_METRIC_EXPORT_INTERVAL``.
    """
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    return [PeriodicExportingMetricReader(e) for e in _build("METRICS", _METRIC_EXPORTERS)]


def _build(signal: str, factories: Mapping[str, Callable[[], _Exporter]]) -> list[_Exporter]:
    variable = f"OTEL_{signal}_EXPORTER"
    exporters = []
    for name in os.environ.get(variable, _default(signal)).split(","):
        name = name.strip().lower()
        if name in ("", "none"):
            continue
        key = f"otlp:{_protocol(signal)}" if name == "otlp" else name
        if key not in factories:
            raise ValueError(f"{variable}: unknown exporter {name!r} (use otlp, console or none)")
        exporters.append(factories[key]())
    return exporters


def _default(signal: str) -> str:
    """``otlp`` when a collector endpoint is configured, else ``none``.

    Setting ``OTEL_EXPORTER_OTLP_ENDPOINT`` alone is how most users say "send it
    there"; without any endpoint nothing leaves the process.
    """
    endpoint = os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    return "otlp" if endpoint else "none"


def _protocol(signal: str) -> str:
    protocol = (
        os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol not in _PROTOCOLS:
        raise ValueError(f"OTLP protocol {protocol!r} is not supported (use http/protobuf or grpc)")
    return protocol
