"""The process-wide telemetry object: providers, instruments and the Prometheus registry.

Everything expensive (providers, tracers, meters, instruments) is built once here;
``request_span`` is the per-request entry point and is cheap, nearly free when
tracing is off. No global OpenTelemetry state is set, so a library or test in the
same process keeps its own providers.
"""

from __future__ import annotations

import os

from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import INVALID_SPAN, NoOpTracer, Span, SpanKind, Tracer
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp

from mcpfence import __version__
from mcpfence.telemetry import names
from mcpfence.telemetry.exporters import metric_readers, span_processors
from mcpfence.telemetry.instruments import Instruments
from mcpfence.telemetry.prometheus import metrics_app
from mcpfence.telemetry.propagation import parent_context
from mcpfence.telemetry.spans import RequestSpan, identity_attributes

__all__ = ["Telemetry"]

_SCOPE = "mcpfence"


class Telemetry:
    """Tracing and metrics for one mcpfence process.

    Build it with :meth:`setup` (from ``OTEL_*`` variables) or directly with
    providers (tests, embedding). ``tracer_provider=None`` turns tracing off;
    ``meter_provider=None`` records no metrics; ``metrics_registry`` is where a
    Prometheus reader registered, served by :meth:`metrics_app`.
    """

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        metrics_registry: CollectorRegistry | None = None,
    ) -> None:
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self._registry = metrics_registry
        self._tracer: Tracer = (
            tracer_provider.get_tracer(_SCOPE, __version__) if tracer_provider else NoOpTracer()
        )
        meter = (meter_provider or NoOpMeterProvider()).get_meter(_SCOPE, __version__)
        self._instruments = Instruments.create(meter)

    @classmethod
    def setup(cls, service_name: str, *, prometheus: bool = True) -> Telemetry:
        """Configure from the ``OTEL_*`` environment (see ``exporters``).

        ``OTEL_SERVICE_NAME`` overrides ``service_name`` (the config file's
        ``telemetry.service_name``); ``OTEL_RESOURCE_ATTRIBUTES`` and
        ``OTEL_TRACES_SAMPLER`` apply as usual. With ``prometheus`` the metrics
        can be scraped from :meth:`metrics_app` whatever ``OTEL_METRICS_EXPORTER`` is.
        """
        resource = Resource.create(
            {SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME") or service_name}
        )
        tracer_provider = None
        processors = span_processors()
        if processors:
            tracer_provider = TracerProvider(resource=resource)
            for processor in processors:
                tracer_provider.add_span_processor(processor)
        readers: list[MetricReader] = metric_readers()
        registry = None
        if prometheus:
            from opentelemetry.exporter.prometheus import PrometheusMetricReader

            registry = CollectorRegistry()
            readers.append(PrometheusMetricReader(registry=registry))
        meter_provider = None
        if readers:
            # Spans are parented explicitly, never made current, so trace-based exemplars
            # could never be sampled; switching them off saves a context lookup per point.
            meter_provider = MeterProvider(
                resource=resource,
                metric_readers=readers,
                exemplar_filter=AlwaysOffExemplarFilter(),
            )
        return cls(
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            metrics_registry=registry,
        )

    @property
    def recording(self) -> bool:
        """Whether anything (spans or metrics) is recorded at all."""
        return self._tracer_provider is not None or self._meter_provider is not None

    @property
    def tracing(self) -> bool:
        """Whether spans are recorded at all."""
        return self._tracer_provider is not None

    def request_span(
        self,
        method: str,
        target: str | None = None,
        *,
        route: str,
        session_id: str | None = None,
        protocol_version: str | None = None,
        request_id: str | int | None = None,
        meta_traceparent: str | None = None,
        meta_tracestate: str | None = None,
        header_traceparent: str | None = None,
        header_tracestate: str | None = None,
        tool_label: str | None = None,
    ) -> RequestSpan:
        """Start the SERVER span for one inbound JSON-RPC request; use it as a context manager.

        ``target`` is the tool name for ``tools/call`` (the span is then named
        ``tools/call TOOL``), else ``None``. The parent comes from the ``_meta``
        trace context when valid, else from the HTTP headers, else the span is a root.
        Metrics label the request with ``tool_label`` when given (the caller's bounded
        name for the tool, see ``names.OTHER_LABEL``) and with ``other`` for a method
        MCP does not define; spans keep the names as sent.
        """
        name = f"{method} {target}" if target else method
        tool = target if method == "tools/call" else None
        method_label = method if method in names.KNOWN_METHODS else names.OTHER_LABEL
        labels = (method_label, tool_label if tool is not None and tool_label is not None else tool)
        metric_attributes = identity_attributes(labels[0], route, labels[1])
        span: Span = INVALID_SPAN
        if self._tracer_provider is not None:
            attributes = identity_attributes(method, route, tool)
            if tool is not None:
                attributes[names.GEN_AI_OPERATION_NAME] = names.EXECUTE_TOOL
            if session_id:
                attributes[names.MCP_SESSION_ID] = session_id
            if protocol_version:
                attributes[names.MCP_PROTOCOL_VERSION] = protocol_version
            if request_id is not None:
                attributes[names.JSONRPC_REQUEST_ID] = str(request_id)
            span = self._tracer.start_span(
                name,
                context=parent_context(
                    meta_traceparent, meta_tracestate, header_traceparent, header_tracestate
                ),
                kind=SpanKind.SERVER,
                attributes=attributes,
            )
        return RequestSpan(
            tracer=self._tracer,
            instruments=self._instruments,
            span=span,
            name=name,
            method=method,
            tool=tool,
            route=route,
            labels=labels,
            metric_attributes=metric_attributes,
        )

    def record_policy_reload(self, ok: bool) -> None:
        """Count one policy-set reload (``mcpfence.policy.reloads``, ``result=ok|error``)."""
        self._instruments.policy_reloads.add(1, {"result": "ok" if ok else "error"})

    def metrics_app(self) -> ASGIApp:
        """An ASGI app serving the Prometheus text format, to mount at ``/metrics``."""
        if self._registry is None:
            raise RuntimeError("Prometheus metrics are off: set up Telemetry with prometheus=True")
        return metrics_app(self._registry)

    def shutdown(self) -> None:
        """Export what is buffered and stop the exporters; call once, at exit."""
        if self._tracer_provider is not None:
            self._tracer_provider.shutdown()
        if self._meter_provider is not None:
            self._meter_provider.shutdown()
