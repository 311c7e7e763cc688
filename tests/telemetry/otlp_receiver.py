"""A real OTLP/HTTP receiver for tests: decodes ``/v1/traces`` and ``/v1/metrics`` protobuf."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from google.protobuf.message import Message
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.servers import serve_asgi

T = TypeVar("T")

KINDS = {
    Span.SPAN_KIND_INTERNAL: "INTERNAL",
    Span.SPAN_KIND_SERVER: "SERVER",
    Span.SPAN_KIND_CLIENT: "CLIENT",
    Span.SPAN_KIND_PRODUCER: "PRODUCER",
    Span.SPAN_KIND_CONSUMER: "CONSUMER",
}
STATUSES = {
    Status.STATUS_CODE_UNSET: "UNSET",
    Status.STATUS_CODE_OK: "OK",
    Status.STATUS_CODE_ERROR: "ERROR",
}


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    status: str
    resource: dict[str, Any]
    events: list[str]
    status_message: str = ""
    event_attributes: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class ReceivedPoint:
    metric: str
    unit: str
    attributes: dict[str, Any]
    value: float
    """The sum for counters, the observation count for histograms."""


@dataclass
class OtlpReceiver:
    url: str = ""
    spans: list[ReceivedSpan] = field(default_factory=list)
    points: list[ReceivedPoint] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, found: Callable[[OtlpReceiver], T], timeout: float = 10.0) -> T:
        """Poll until ``found`` returns something truthy (exports are batched)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                result = found(self)
            if result or time.monotonic() > deadline:
                return result
            time.sleep(0.05)

    def spans_named(self, name: str, kind: str = "SERVER") -> list[ReceivedSpan]:
        return [span for span in self.spans if span.name == name and span.kind == kind]

    def metric_names(self) -> set[str]:
        return {point.metric for point in self.points}

    async def _traces(self, request: Request) -> Response:
        message = _parse(ExportTraceServiceRequest(), await _body(request))
        with self._lock:
            self.spans.extend(_spans(message))
        return _reply(ExportTraceServiceResponse())

    async def _metrics(self, request: Request) -> Response:
        message = _parse(ExportMetricsServiceRequest(), await _body(request))
        with self._lock:
            self.points.extend(_points(message))
        return _reply(ExportMetricsServiceResponse())


@contextmanager
def otlp_receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    app = Starlette(
        routes=[
            Route("/v1/traces", receiver._traces, methods=["POST"]),
            Route("/v1/metrics", receiver._metrics, methods=["POST"]),
        ]
    )
    with serve_asgi(app) as url:
        receiver.url = url
        yield receiver


async def _body(request: Request) -> bytes:
    body = await request.body()
    return gzip.decompress(body) if request.headers.get("content-encoding") == "gzip" else body


def _parse(message: Message, body: bytes) -> Any:
    message.ParseFromString(body)
    return message


def _reply(message: Message) -> Response:
    return Response(message.SerializeToString(), media_type="application/x-protobuf")


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind) if kind else None


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs if isinstance(pair, KeyValue)}


def _spans(message: ExportTraceServiceRequest) -> Iterator[ReceivedSpan]:
    for resource_spans in message.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield ReceivedSpan(
                    name=span.name,
                    kind=KINDS[span.kind],
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    parent_span_id=span.parent_span_id.hex(),
                    attributes=_attributes(span.attributes),
                    status=STATUSES[span.status.code],
                    resource=resource,
                    events=[event.name for event in span.events],
                    status_message=span.status.message,
                    event_attributes=tuple(_attributes(event.attributes) for event in span.events),
                )


def _points(message: ExportMetricsServiceRequest) -> Iterator[ReceivedPoint]:
    for resource_metrics in message.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                data = metric.WhichOneof("data")
                for point in getattr(metric, data).data_points:
                    value = point.count if data == "histogram" else point.as_double or point.as_int
                    yield ReceivedPoint(metric.name, metric.unit, _attributes(point.attributes), value)
