"""Exporters chosen by the standard ``OTEL_*`` environment variables.

``OTEL_TRACES_EXPORTER`` and ``OTEL_METRICS_EXPORTER`` take a comma-separated list of
``otlp``, ``console`` and ``none`` (the default here: a proxy should not phone a
collector nobody configured). ``otlp`` speaks ``OTEL_EXPORTER_OTLP_{SIGNAL}_PROTOCOL``
or ``OTEL_EXPORTER_OTLP_PROTOCOL`` (``http/protobuf`` by default, or ``grpc``); the
exporters themselves read the endpoint, headers, timeout and compression variables.
Exporter modules are imported only when chosen, so an unused gRPC stack costs nothing.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Mapping
from typing import Final, Protocol, cast, runtime_checkable

from opentelemetry.sdk.metrics.export import MetricExporter, MetricReader
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

log = logging.getLogger("mcpfence")

_PROTOCOLS = ("http/protobuf", "grpc")

# ``module:class`` of each exporter; the module is imported only when the exporter is chosen.
_SPAN_EXPORTERS: Final = {
    "otlp:http/protobuf": "mcpfence.telemetry.otlp:OTLPSpanExporter",  # the SDK exporter, leaner encoder
    "otlp:grpc": "opentelemetry.exporter.otlp.proto.grpc.trace_exporter:OTLPSpanExporter",
    "console": "opentelemetry.sdk.trace.export:ConsoleSpanExporter",
}

_METRIC_EXPORTERS: Final = {
    "otlp:http/protobuf": "opentelemetry.exporter.otlp.proto.http.metric_exporter:OTLPMetricExporter",
    "otlp:grpc": "opentelemetry.exporter.otlp.proto.grpc.metric_exporter:OTLPMetricExporter",
    "console": "opentelemetry.sdk.metrics.export:ConsoleMetricExporter",
}


@runtime_checkable
class _Batching(Protocol):
    """An exporter that brings its own batch processor (``otlp.OTLPSpanExporter``)."""

    def batch_processor(self) -> SpanProcessor: ...


def span_processors() -> list[SpanProcessor]:
    """A batch processor around each exporter ``OTEL_TRACES_EXPORTER`` asks for; empty means tracing is off.

    Batching follows the ``OTEL_BSP_*`` variables (the SDK's defaults: 512 spans per export,
    at least every 5 s).
    """
    return [
        exporter.batch_processor() if isinstance(exporter, _Batching) else BatchSpanProcessor(exporter)
        for exporter in span_exporters()
    ]


def span_exporters() -> list[SpanExporter]:
    """The span exporters ``OTEL_TRACES_EXPORTER`` asks for; empty means tracing is off."""
    return cast(list[SpanExporter], _build("TRACES", _SPAN_EXPORTERS))


def metric_readers() -> list[MetricReader]:
    """Periodic readers for the exporters ``OTEL_METRICS_EXPORTER`` asks for.

    The reader takes its interval from ``OTEL_METRIC_EXPORT_INTERVAL``.
    """
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    exporters = cast(list[MetricExporter], _build("METRICS", _METRIC_EXPORTERS))
    return [PeriodicExportingMetricReader(e) for e in exporters]


def _build(signal: str, classes: Mapping[str, str]) -> list[object]:
    """An instance of each exporter ``OTEL_{signal}_EXPORTER`` names, of the classes in ``classes``."""
    variable = f"OTEL_{signal}_EXPORTER"
    exporters: list[object] = []
    for name in os.environ.get(variable, _default(signal)).split(","):
        name = name.strip().lower()
        if name in ("", "none"):
            continue
        key = f"otlp:{_protocol(signal)}" if name == "otlp" else name
        if key not in classes:
            raise ValueError(f"{variable}: unknown exporter {name!r} (use otlp, console or none)")
        exporters.append(_instance(classes[key]))
    return exporters


# mcpfence's exporter reaches into the SDK exporter it extends; where a newer SDK moved
# those internals, the SDK's own exporter is used instead (the same bytes, more CPU).
_FALLBACKS: Final = {
    "mcpfence.telemetry.otlp:OTLPSpanExporter":
        "opentelemetry.exporter.otlp.proto.http.trace_exporter:OTLPSpanExporter",
}


def _instance(path: str) -> object:
    """An instance of the ``module:class`` at ``path`` (its fallback's, if it cannot work here)."""
    module, _, class_name = path.partition(":")
    try:
        exporter = getattr(importlib.import_module(module), class_name)()
        if getattr(exporter, "usable", True):
            return exporter
    except (ImportError, AttributeError):
        if path not in _FALLBACKS:
            raise
    log.warning("%s does not fit the installed OpenTelemetry SDK; using %s", path, _FALLBACKS[path])
    return _instance(_FALLBACKS[path])


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
