"""Per-request tracing and timing: the objects the proxy pipeline holds while it works.

Spans are parented explicitly rather than through the ambient context, so nothing here
touches context variables, and when tracing is off every span is the shared invalid
span: the only per-call work left is a clock read and the metric updates.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from time import perf_counter
from types import TracebackType
from typing import Self

from opentelemetry.context import Context
from opentelemetry.metrics import Histogram
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace import set_span_in_context as _in_context
from opentelemetry.util.types import AttributeValue

from mcpfence.telemetry import names
from mcpfence.telemetry.instruments import Instruments
from mcpfence.telemetry.propagation import PROPAGATOR
from mcpfence.urls import redact_urls

__all__ = ["RequestSpan", "UpstreamSpan", "identity_attributes"]


def identity_attributes(method: str, route: str, tool: str | None) -> dict[str, AttributeValue]:
    """The attributes naming one request, repeated on each span and duration metric of it.

    A fresh dict each time: callers add to it (``error.type``, span-only attributes).
    """
    attributes: dict[str, AttributeValue] = {names.MCP_METHOD_NAME: method, names.ROUTE: route}
    if tool is not None:
        attributes[names.GEN_AI_TOOL_NAME] = tool
    return attributes


class _TimedSpan:
    """A span and a duration histogram that start and finish together."""

    __slots__ = ("_histogram", "_metric_attributes", "_span", "_start")

    def __init__(
        self, span: Span, histogram: Histogram, metric_attributes: dict[str, AttributeValue]
    ) -> None:
        self._span = span
        self._histogram = histogram
        self._metric_attributes = metric_attributes
        self._start = perf_counter()

    @property
    def span(self) -> Span:
        """The OpenTelemetry span (the invalid, non-recording span when tracing is off)."""
        return self._span

    def set_error(self, error: int | str, message: str | None = None) -> None:
        """Mark the operation failed.

        A JSON-RPC error code (int) becomes both ``error.type`` and
        ``rpc.response.status_code``; a string (``tool_error``, an exception name) is
        the ``error.type`` as is. The error type also labels the duration metric.
        """
        error_type = str(error)
        self._metric_attributes[names.ERROR_TYPE] = error_type
        if self._span.is_recording():
            self._span.set_attribute(names.ERROR_TYPE, error_type)
            if isinstance(error, int):
                self._span.set_attribute(names.RPC_RESPONSE_STATUS_CODE, error_type)
            self._span.set_status(Status(StatusCode.ERROR, message and redact_urls(message)))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.end(exc)

    def end(self, exc: BaseException | None = None) -> None:
        """Finish: record the duration and end the span, once (``with`` does it for you).

        For callers whose start and finish are in different hooks; ``exc`` is what
        made the operation fail, if anything.
        """
        if exc is not None:
            if names.ERROR_TYPE not in self._metric_attributes:
                self.set_error(type(exc).__qualname__, str(exc))
            if self._span.is_recording():
                # The exception's text may quote an upstream URL: record it redacted.
                trace = "".join(traceback.format_exception(exc))
                redacted = {
                    "exception.message": redact_urls(str(exc)),
                    "exception.stacktrace": redact_urls(trace),
                }
                self._span.record_exception(exc, redacted)
        self._histogram.record(perf_counter() - self._start, self._metric_attributes)
        self._span.end()


class UpstreamSpan(_TimedSpan):
    """The CLIENT span of one forwarded request, and the trace context to send with it.

    ``headers`` go on the upstream HTTP request; ``meta`` entries go into the forwarded
    ``params._meta`` (SEP-414). Both hold ``traceparent`` (and ``tracestate`` when
    there is one) and are empty when tracing is off.
    """

    __slots__ = ("headers", "meta")

    def __init__(
        self,
        span: Span,
        histogram: Histogram,
        metric_attributes: dict[str, AttributeValue],
        carrier: dict[str, str],
    ) -> None:
        super().__init__(span, histogram, metric_attributes)
        self.headers = carrier
        self.meta = carrier


class RequestSpan(_TimedSpan):
    """The SERVER span of one inbound JSON-RPC request, with its policy decision."""

    __slots__ = ("_instruments", "_labels", "_method", "_name", "_route", "_tool", "_tracer")

    def __init__(
        self,
        *,
        tracer: Tracer,
        instruments: Instruments,
        span: Span,
        name: str,
        method: str,
        tool: str | None,
        route: str,
        labels: tuple[str, str | None],
        metric_attributes: dict[str, AttributeValue],
    ) -> None:
        """``labels`` are the method and tool as metrics name them (bounded)."""
        super().__init__(span, instruments.operation_duration, metric_attributes)
        self._tracer = tracer
        self._instruments = instruments
        self._name = name
        self._method = method
        self._tool = tool
        self._route = route
        self._labels = labels

    @property
    def trace_id(self) -> str:
        """The trace id as 32 hex digits (for the decision log), or ``""`` when not traced."""
        context = self._span.get_span_context()
        return format(context.trace_id, "032x") if context.is_valid else ""

    def set_decision(
        self, decision: str, matched: Sequence[str] = (), violated: Sequence[str] = ()
    ) -> None:
        """Record the policy decision on the span and in ``mcpfence.decisions``.

        The counter gets one point per violated policy (``policy`` label), or a single
        point with ``policy=""`` when none was violated, so denials can be broken
        down by policy. A ``deny`` marks the span failed with ``error.type=tool_error``:
        the client receives a result with ``isError: true``.
        """
        counter = self._instruments.decisions
        labels = {"route": self._route, "tool": self._labels[1] or "", "decision": decision}
        for policy in violated or ("",):
            counter.add(1, {**labels, "policy": policy})
        if self._span.is_recording():
            self._span.set_attributes(
                {
                    names.DECISION: decision,
                    names.POLICIES_MATCHED: list(matched),
                    names.POLICIES_VIOLATED: list(violated),
                }
            )
        if decision == "deny":
            self.set_error(names.TOOL_ERROR, "denied by policy")

    def policy_span(self) -> Span:
        """An INTERNAL child span around policy evaluation, already started.

        Use it as a context manager (an escaping exception fails it) or call
        ``end()`` on it.
        """
        if not self._span.is_recording():
            return INVALID_SPAN
        return self._tracer.start_span(
            names.POLICY_SPAN,
            context=self._context(),
            kind=SpanKind.INTERNAL,
            attributes=self._identity(),
        )

    def upstream_span(self) -> UpstreamSpan:
        """A CLIENT child span for the forwarded request; use it as a context manager.

        A request the sampler left out still passes its (unsampled) context upstream,
        so the upstream makes the same sampling decision.
        """
        metric_attributes = identity_attributes(self._labels[0], self._route, None)
        carrier: dict[str, str] = {}
        if not self._span.get_span_context().is_valid:  # tracing off
            return UpstreamSpan(
                INVALID_SPAN, self._instruments.upstream_duration, metric_attributes, carrier
            )
        span = self._tracer.start_span(
            self._name, context=self._context(), kind=SpanKind.CLIENT, attributes=self._identity()
        )
        PROPAGATOR.inject(carrier, context=_in_context(span))
        return UpstreamSpan(span, self._instruments.upstream_duration, metric_attributes, carrier)

    def _context(self) -> Context:
        return _in_context(self._span, Context())

    def _identity(self) -> dict[str, AttributeValue]:
        """The attributes child spans repeat so each can be searched on its own."""
        return identity_attributes(self._method, self._route, self._tool)
