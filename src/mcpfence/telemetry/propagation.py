"""W3C trace context in and out: which parent an inbound request's span gets.

MCP carries trace context in ``params._meta`` (SEP-414) so that it survives stdio and
intermediaries; HTTP carries it in headers. The ``_meta`` context names the MCP-level
caller, so it wins; the header is the fallback. Always W3C, whatever
``OTEL_PROPAGATORS`` says: both carriers are defined as W3C fields.
"""

from __future__ import annotations

from opentelemetry.context import Context
from opentelemetry.trace import get_current_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

PROPAGATOR = TraceContextTextMapPropagator()

_ROOT = Context()


def parent_context(
    meta_traceparent: str | None,
    meta_tracestate: str | None,
    header_traceparent: str | None,
    header_tracestate: str | None,
) -> Context:
    """The first valid of the ``_meta`` and header contexts, else a fresh root."""
    for traceparent, tracestate in (
        (meta_traceparent, meta_tracestate),
        (header_traceparent, header_tracestate),
    ):
        if traceparent:
            carrier = {"traceparent": traceparent}
            if tracestate:
                carrier["tracestate"] = tracestate
            context = PROPAGATOR.extract(carrier, context=_ROOT)
            if get_current_span(context).get_span_context().is_valid:
                return context
    return _ROOT
