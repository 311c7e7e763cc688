"""An in-process Telemetry wired to in-memory exporters, for unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry

from mcpfence.telemetry import Telemetry


@dataclass
class Recorded:
    telemetry: Telemetry
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def span(self, name: str, kind: SpanKind = SpanKind.SERVER) -> ReadableSpan:
        """The one finished span with this name and kind."""
        (span,) = [s for s in self.spans() if s.name == name and s.kind is kind]
        return span

    def points(self, metric: str) -> list[tuple[dict[str, Any], Any]]:
        """(attributes, data point) for every point of ``metric``."""
        data = self.reader.get_metrics_data()
        return [
            (dict(point.attributes or {}), point)
            for resource in (data.resource_metrics if data else [])
            for scope in resource.scope_metrics
            for found in scope.metrics
            if found.name == metric
            for point in found.data.data_points
        ]


def _recorded(tracing: bool) -> Iterator[Recorded]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider() if tracing else None
    if tracer_provider is not None:
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    registry = CollectorRegistry()
    meter_provider = MeterProvider(
        metric_readers=[reader, PrometheusMetricReader(registry=registry)]
    )
    telemetry = Telemetry(
        tracer_provider=tracer_provider, meter_provider=meter_provider, metrics_registry=registry
    )
    yield Recorded(telemetry, exporter, reader)
    telemetry.shutdown()


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    """Tracing and metrics on."""
    yield from _recorded(tracing=True)


@pytest.fixture
def untraced() -> Iterator[Recorded]:
    """Tracing off (as with OTEL_TRACES_EXPORTER=none), metrics on."""
    yield from _recorded(tracing=False)
