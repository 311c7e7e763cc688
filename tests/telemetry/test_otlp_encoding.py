"""mcpfence's OTLP span encoder writes exactly the bytes the SDK's encoder writes."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from mcpfence.telemetry import Telemetry
from mcpfence.telemetry.otlp import OTLPSpanExporter, encode_spans
from tests.telemetry.otlp_receiver import otlp_receiver

REMOTE = SpanContext(
    0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(1), trace_state=TraceState([("k", "v"), ("a", "b")])
)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def recording(exporter: InMemorySpanExporter, resource: Resource | None = None) -> TracerProvider:
    """A provider whose spans end up in ``exporter``."""
    provider = TracerProvider(resource=resource or Resource.create({}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def sdk_bytes(spans: list[ReadableSpan]) -> bytes:
    return sdk_encode_spans(spans).SerializePartialToString()


def test_mcpfence_request_spans_encode_as_the_sdk_encodes_them(exporter: InMemorySpanExporter) -> None:
    telemetry = Telemetry(tracer_provider=recording(exporter))
    for denied in (False, True):
        with telemetry.request_span(
            "tools/call", "send", route="pm", session_id="s-1", protocol_version="2025-11-25", request_id=7,
            header_traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ) as request:
            with request.policy_span():
                pass
            request.set_decision("deny" if denied else "allow", ["a", "b"], ["b"] if denied else [])
            if not denied:
                with request.upstream_span() as upstream:
                    upstream.set_error("upstream_error", "refused by http://user:secret@upstream/")
    spans = list(exporter.get_finished_spans())
    assert len(spans) == 5
    assert encode_spans(spans) == sdk_bytes(spans)


def test_every_span_field_and_attribute_type_encodes_as_the_sdk_encodes_it(
    exporter: InMemorySpanExporter,
) -> None:
    resource = Resource.create({"service.name": "svc", "f": 1.5, "l": ["a", "b"]}, schema_url="https://r")
    provider = recording(exporter, resource)
    tracer = provider.get_tracer("scope", "1.0", schema_url="https://scope")
    attributes = {
        "s": "", "i": -5, "big": 2**62, "f": -0.0, "b": False, "seq": (1, 2), "strs": ["x", ""], "none": [],
    }
    parent = set_span_in_context(NonRecordingSpan(REMOTE))
    with tracer.start_as_current_span(
        "root", context=parent, kind=SpanKind.CONSUMER, attributes=attributes,
        links=[Link(REMOTE, {"l": 1}), Link(SpanContext(1, 2, False))],
    ) as span:
        span.add_event("event", {"e": "1", "t": True})
        span.add_event("")
        span.set_status(Status(StatusCode.ERROR, "boom"))
        span.record_exception(ValueError("bad"))
    with provider.get_tracer("other").start_as_current_span("") as span:
        span.set_status(Status(StatusCode.OK))
    with tracer.start_as_current_span("child", kind=SpanKind.PRODUCER):
        pass
    spans = list(exporter.get_finished_spans())
    assert encode_spans(spans) == sdk_bytes(spans)


def test_spans_are_grouped_by_resource_as_the_sdk_groups_them(exporter: InMemorySpanExporter) -> None:
    other = InMemorySpanExporter()
    for name in ("a", "b"):  # two providers, two equal resources: one group
        tracer = recording(other, Resource.create({"service.name": "other"})).get_tracer("t")
        with tracer.start_as_current_span(name):
            pass
    first, second = other.get_finished_spans()
    with recording(exporter, Resource.create({"service.name": "mine"})).get_tracer("t").start_span("c"):
        pass
    spans = [first, *exporter.get_finished_spans(), second]
    assert encode_spans(spans) == sdk_bytes(spans)


def test_an_attribute_the_sdk_cannot_encode_is_left_out_as_the_sdk_leaves_it(
    exporter: InMemorySpanExporter,
) -> None:
    attributes = {"huge": 2**64, "lone surrogate": "\ud800", "kept": "yes"}
    with recording(exporter).get_tracer("t").start_span("s", attributes=attributes):
        pass
    spans = list(exporter.get_finished_spans())
    assert encode_spans(spans) == sdk_bytes(spans)


def test_a_span_that_cannot_be_encoded_is_dropped_without_failing_its_caller() -> None:
    with otlp_receiver() as receiver:
        provider = TracerProvider()
        provider.add_span_processor(OTLPSpanExporter(endpoint=f"{receiver.url}/v1/traces").batch_processor())
        tracer = provider.get_tracer("t")
        tracer.start_span("\ud800").end()
        tracer.start_span("kept").end()
        provider.shutdown()
        assert [span.name for span in receiver.wait_for(lambda r: r.spans)] == ["kept"]


def test_an_sdk_without_the_exporter_internals_gets_its_own_exporter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as SdkExporter

    from mcpfence.telemetry.exporters import span_exporters

    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setattr(OTLPSpanExporter, "usable", property(lambda self: False))
    (chosen,) = span_exporters()
    assert type(chosen) is SdkExporter


def test_spans_are_queued_encoded_with_the_installed_sdk() -> None:
    from mcpfence.telemetry.otlp import EncodingSpanProcessor

    processor = OTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces").batch_processor()
    assert isinstance(processor, EncodingSpanProcessor)
    processor.shutdown()


def test_an_sdk_whose_batch_queue_moved_gets_its_plain_batch_processor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from mcpfence.telemetry import otlp

    monkeypatch.setattr(otlp, "_queue_known", lambda: False)
    with otlp_receiver() as receiver:
        processor = OTLPSpanExporter(endpoint=f"{receiver.url}/v1/traces").batch_processor()
        assert type(processor) is BatchSpanProcessor
        provider = TracerProvider()
        provider.add_span_processor(processor)
        provider.get_tracer("t").start_span("still exported").end()
        provider.shutdown()
        assert [span.name for span in receiver.wait_for(lambda r: r.spans)] == ["still exported"]
