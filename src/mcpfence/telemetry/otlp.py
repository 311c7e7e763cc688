"""OTLP/HTTP span export with a leaner encoder: the same bytes, a fraction of the CPU.

The SDK's exporter builds a protobuf object per span, attribute and value before
serializing them: ~47 µs per mcpfence span, in a worker thread that holds the GIL
the event loop needs. :func:`encode_spans` writes the protobuf wire format of the
same ``ExportTraceServiceRequest`` directly (fields in number order, proto3 defaults
left out, as the SDK's serializer does), so a collector receives exactly what it
received before. Everything else (endpoint, headers, compression, retries, the
exporter's own metrics) is the SDK exporter's; :class:`EncodingSpanProcessor` is the SDK's
batch processor queuing spans already encoded. Both reach into SDK internals (the
exporter's client and metrics, the processor's queue), hence the SDK's lower bound in
``pyproject.toml``; where a newer SDK moved them, the SDK's own exporter or batch
processor is used instead (``exporters.py``). ``tests/telemetry`` checks the bytes
against the SDK's encoder.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from struct import Struct
from typing import Any, cast

from opentelemetry.exporter.otlp.proto.http._common import (
    RequestPayloadTooLargeError,
    _is_request_too_large,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as _SdkOTLPSpanExporter,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE
from opentelemetry.trace import Link

__all__ = ["EncodingSpanProcessor", "OTLPSpanExporter", "encode_request", "encode_span", "encode_spans"]

_logger = logging.getLogger(__name__)

_FIXED64 = Struct("<Q").pack
_DOUBLE = Struct("<d").pack
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
# Span.flags: the parent's "is remote" is known (0x100), and is true (0x200).
_FLAGS_LOCAL = b"\x85\x01" + (0x100).to_bytes(4, "little")
_FLAGS_REMOTE = b"\x85\x01" + (0x300).to_bytes(4, "little")
_LINK_FLAGS_LOCAL = b"\x35" + (0x100).to_bytes(4, "little")
_LINK_FLAGS_REMOTE = b"\x35" + (0x300).to_bytes(4, "little")


_SMALL = [bytes((value,)) for value in range(0x80)]


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _SMALL[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: ``tag`` (one byte, field numbers < 16), length, payload."""
    size = len(payload)
    return tag + (_SMALL[size] if size < 0x80 else _varint(size)) + payload


def _any_value(value: Any) -> bytes:
    """``AnyValue`` for an attribute value, by the SDK's rules (a ``bool`` before an ``int``)."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _field(b"\x0a", value.encode())
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError(f"Value out of range: {value}")
        return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE(value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if isinstance(value, Sequence):
        return _field(b"\x2a", b"".join([_field(b"\x0a", _any_value(v)) for v in value]))
    if isinstance(value, Mapping):
        return _field(b"\x32", b"".join([_field(b"\x0a", _key_value(str(k), v)) for k, v in value.items()]))
    raise Exception(f"Invalid type {type(value)} of value {value}")  # the SDK's exception and text


def _key_value(key: str, value: Any) -> bytes:
    encoded = key.encode()
    return (_field(b"\x0a", encoded) if encoded else b"") + _field(b"\x12", _any_value(value))


# Encoded ``KeyValue``s of string and string-tuple values: the same few repeat on every
# span (method, route, tool, decision, policies). Emptied when full, so values that
# never repeat (request ids) cannot grow it.
_KEY_VALUES: dict[tuple[str, str | tuple[str, ...]], bytes] = {}
_KEY_VALUES_MAX = 4096


def _attributes(tag: bytes, attributes: Mapping[str, Any] | None) -> bytes:
    """Repeated ``KeyValue`` fields; a value that cannot be encoded is logged and left out."""
    if not attributes:
        return b""
    parts = []
    for key, value in attributes.items():
        kind = type(value)
        try:
            if kind is str or (kind is tuple and all(type(v) is str for v in value)):
                encoded = _KEY_VALUES.get((key, value))
                if encoded is None:
                    if len(_KEY_VALUES) >= _KEY_VALUES_MAX:
                        _KEY_VALUES.clear()
                    encoded = _KEY_VALUES[key, value] = _key_value(key, value)
            else:
                encoded = _key_value(key, value)
        except Exception as error:  # e.g. a lone surrogate, which UTF-8 cannot carry
            _logger.exception("Failed to encode key %s: %s", key, error)
            continue
        parts.append(_field(tag, encoded))
    return b"".join(parts)


def _count(tag: bytes, value: int) -> bytes:
    return tag + _varint(value) if value else b""


def _time(tag: bytes, value: int | None) -> bytes:
    return tag + _FIXED64(value) if value else b""


def _span(span: ReadableSpan) -> bytes:
    context = span.get_span_context()
    assert context is not None
    parent = span.parent
    state = ",".join([f"{k}={v}" for k, v in context.trace_state.items()]) if context.trace_state else ""
    status = span.status
    status_body = (_field(b"\x12", status.description.encode()) if status.description else b"") + _count(
        b"\x18", status.status_code.value
    )
    return b"".join(
        (
            b"\x0a\x10",
            context.trace_id.to_bytes(16, "big"),
            b"\x12\x08",
            context.span_id.to_bytes(8, "big"),
            _field(b"\x1a", state.encode()) if state else b"",
            b"\x22\x08" + parent.span_id.to_bytes(8, "big") if parent else b"",
            _field(b"\x2a", span.name.encode()) if span.name else b"",
            b"\x30" + _varint(span.kind.value + 1),  # the SDK's SpanKind counts from 0, OTLP's from 1
            _time(b"\x39", span.start_time),
            _time(b"\x41", span.end_time),
            _attributes(b"\x4a", span.attributes),
            _count(b"\x50", span.dropped_attributes),
            b"".join([_field(b"\x5a", _event(event)) for event in span.events]),
            _count(b"\x60", span.dropped_events),
            b"".join([_field(b"\x6a", _link(link)) for link in span.links]),
            _count(b"\x70", span.dropped_links),
            _field(b"\x7a", status_body),
            _FLAGS_REMOTE if parent and parent.is_remote else _FLAGS_LOCAL,
        )
    )


def _event(event: Event) -> bytes:
    return (
        _time(b"\x09", event.timestamp)
        + (_field(b"\x12", event.name.encode()) if event.name else b"")
        + _attributes(b"\x1a", event.attributes)
        + _count(b"\x20", event.dropped_attributes)
    )


def _link(link: Link) -> bytes:
    context = link.context
    return (
        b"\x0a\x10"
        + context.trace_id.to_bytes(16, "big")
        + b"\x12\x08"
        + context.span_id.to_bytes(8, "big")
        + _attributes(b"\x22", link.attributes)
        + _count(b"\x28", link.dropped_attributes)
        + (_LINK_FLAGS_REMOTE if context.is_remote else _LINK_FLAGS_LOCAL)
    )


Group = tuple[bytes, bytes]
"""A resource's or a scope's message fields before and after its spans (or scopes)."""

EncodedSpan = tuple[Group, Group, bytes]
"""A span ready to send: its resource's and scope's groups and its ``Span`` message."""

# Each resource and scope is encoded once: spans share a few (one per tracer provider and
# tracer). Kept with the object itself, so its id cannot be reused while it is here.
_GROUPS: dict[int, tuple[object, Group]] = {}
_GROUPS_MAX = 256


def _group(owner: object, encode: Callable[[], Group]) -> Group:
    found = _GROUPS.get(id(owner))
    if found is not None:
        return found[1]
    if len(_GROUPS) >= _GROUPS_MAX:
        _GROUPS.clear()
    group = encode()
    _GROUPS[id(owner)] = (owner, group)
    return group


def _resource(resource: Resource) -> Group:
    """``ResourceSpans.resource`` and ``.schema_url`` (fields 1 and 3; the scopes go between)."""
    schema = resource.schema_url
    return _field(b"\x0a", _attributes(b"\x0a", resource.attributes)), (
        _field(b"\x1a", schema.encode()) if schema else b""
    )


def _scope(scope: InstrumentationScope | None) -> Group:
    """``ScopeSpans.scope`` and ``.schema_url`` (fields 1 and 3; the spans go between)."""
    if scope is None:
        return b"\x0a\x00", b""
    fields = (
        (_field(b"\x0a", scope.name.encode()) if scope.name else b"")
        + (_field(b"\x12", scope.version.encode()) if scope.version else b"")
        + _attributes(b"\x1a", scope.attributes)
    )
    return _field(b"\x0a", fields), (_field(b"\x1a", scope.schema_url.encode()) if scope.schema_url else b"")


def encode_span(span: ReadableSpan) -> EncodedSpan:
    """One span, encoded as it will be sent; :func:`encode_request` puts spans together."""
    resource = span.resource
    scope = span.instrumentation_scope or None
    return (
        _group(resource, lambda: _resource(resource)),
        _group(scope, lambda: _scope(scope)),
        _field(b"\x12", _span(span)),
    )


def encode_request(spans: Iterable[EncodedSpan]) -> bytes:
    """A serialized ``ExportTraceServiceRequest``: spans grouped by resource, then by scope,
    each group in the order its first span came, as the SDK groups them."""
    groups: dict[Group, dict[Group, list[bytes]]] = {}
    for resource, scope, encoded in spans:
        groups.setdefault(resource, {}).setdefault(scope, []).append(encoded)
    return b"".join(
        _field(
            b"\x0a",
            resource_head
            + b"".join(
                _field(b"\x12", scope_head + b"".join(encoded) + scope_tail)
                for (scope_head, scope_tail), encoded in scopes.items()
            )
            + resource_tail,
        )
        for (resource_head, resource_tail), scopes in groups.items()
    )


def encode_spans(spans: Sequence[ReadableSpan]) -> bytes:
    """A serialized ``ExportTraceServiceRequest`` of ``spans``, as the SDK's encoder writes it."""
    return encode_request(map(encode_span, spans))


class OTLPSpanExporter(_SdkOTLPSpanExporter):
    """The SDK's OTLP/HTTP span exporter, encoding with :func:`encode_spans`.

    ``export`` is the SDK's, step for step (its metrics, size limit and HTTP client),
    with only the encoder swapped; :meth:`batch_processor` queues spans encoded.
    """

    @property
    def usable(self) -> bool:
        """Whether the SDK exporter has the internals :meth:`export_encoded` reads (an SDK
        newer than this code may not: then the SDK's own exporter is used)."""
        return all(hasattr(self, name) for name in ("_shutdown", "_metrics", "_max_request_size", "_client"))

    def batch_processor(self) -> SpanProcessor:
        """The SDK's batch processor around this exporter, queuing each span encoded, or
        queuing SDK spans where the processor's queue is not the one this code knows."""
        return EncodingSpanProcessor(self) if _queue_known() else BatchSpanProcessor(self)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.export_encoded([encode_span(span) for span in spans])

    def export_encoded(self, spans: Sequence[EncodedSpan]) -> SpanExportResult:
        """Send spans :func:`encode_span` encoded."""
        if self._shutdown:
            _logger.warning("Exporter already shutdown, ignoring batch")
            return SpanExportResult.FAILURE
        with self._metrics.export_operation(len(spans)) as result:
            try:
                data = encode_request(spans)
            except Exception as error:
                _logger.error("Failed to encode span batch: %s", error)
                result.error = error
                return SpanExportResult.FAILURE
            if _is_request_too_large(data, self._max_request_size):
                _logger.warning(
                    "Dropping span batch: serialized size %d bytes exceeds max_request_size %d bytes.",
                    len(data),
                    self._max_request_size,
                )
                result.error = RequestPayloadTooLargeError(
                    f"Serialized span request size {len(data)} bytes exceeds max_request_size "
                    f"{self._max_request_size} bytes."
                )
                return SpanExportResult.FAILURE
            answer = self._client.export(data)
            if not answer.success:
                result.error = answer.error
                if answer.status_code is not None:
                    result.error_attrs = {HTTP_RESPONSE_STATUS_CODE: answer.status_code}
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS


class _Discard(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


@cache
def _queue_known() -> bool:
    """Whether the SDK's batch processor has the internal queue :class:`EncodingSpanProcessor`
    feeds (asked once, of a processor around an exporter that discards)."""
    probe = BatchSpanProcessor(_Discard())
    try:
        return hasattr(getattr(probe, "_batch_processor", None), "emit")
    finally:
        probe.shutdown()  # type: ignore[no-untyped-call]


class _EncodedBatches:
    """What the batch processor exports through: batches of encoded spans."""

    def __init__(self, exporter: OTLPSpanExporter) -> None:
        self.exporter = exporter

    def export(self, batch: Sequence[EncodedSpan]) -> SpanExportResult:
        return self.exporter.export_encoded(batch)

    def shutdown(self) -> None:
        self.exporter.shutdown()  # type: ignore[no-untyped-call]


class EncodingSpanProcessor(BatchSpanProcessor):
    """The SDK's batch processor (its ``OTEL_BSP_*`` settings, queue, worker and flushes)
    with each span queued encoded instead of as SDK objects.

    A span waits in the queue until its batch is sent. As SDK objects, each span kept
    ~9 objects alive for the garbage collector to track: with tracing on, the collector
    ran every ~27 calls and now and then scanned the whole heap (tens of ms, the traced
    p99). Encoded, a span is one tuple of bytes, and the objects go as the span ends;
    encoding costs the same wherever it runs.
    """

    def __init__(self, exporter: OTLPSpanExporter) -> None:
        super().__init__(cast(SpanExporter, _EncodedBatches(exporter)))

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is None or not span.context.trace_flags.sampled:
            return
        try:
            encoded = encode_span(span)
        except Exception as error:  # never into the request that ended the span
            _logger.error("Failed to encode span %r: %s", span.name, error)
            return
        # The queue holds what the exporter takes: encoded spans.
        self._batch_processor.emit(encoded)  # type: ignore[arg-type]
