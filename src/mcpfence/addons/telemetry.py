"""Telemetry addons: a span per request, trace context upstream, a decision log line per call.

Two addons, because they belong at the two ends of the pipeline:
:class:`TracingAddon` runs first, so its span covers every other addon and its
response hook sees the final answer; :class:`UpstreamTraceAddon` runs last, so
it starts the upstream (CLIENT) span only for requests that are really
forwarded, and injects the trace context into ``params._meta`` of exactly the
message that is sent. The addons between declare both rules (``after``,
``before``), and a pipeline that breaks them is refused when it is built.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from typing import Any

from mcpfence.catalog import ToolCatalog
from mcpfence.pipeline import BaseAddon, Flow
from mcpfence.policy import Decision
from mcpfence.protocol import NAME_BEARING
from mcpfence.session import remembered
from mcpfence.telemetry import DecisionLog, RequestSpan, Telemetry, names


def _meta(params: dict[str, Any]) -> dict[str, Any]:
    meta = params.get("_meta")
    return meta if isinstance(meta, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class TracingAddon(BaseAddon):
    """The SERVER span of each request; metrics; the decision log."""

    def __init__(
        self,
        telemetry: Telemetry,
        decision_log: DecisionLog | None,
        policy_revision: Callable[[], str],
        catalog: ToolCatalog,
    ) -> None:
        self.telemetry = telemetry
        self.catalog = catalog
        self.decision_log = decision_log
        self.policy_revision = policy_revision
        self._records_arguments = decision_log is not None and decision_log.records_arguments

    def request(self, flow: Flow) -> None:
        params = flow.params
        meta = _meta(params)
        key = NAME_BEARING.get(flow.method)
        context = flow.context
        target = _text(params.get(key)) if key else None
        # Metrics name only tools the route listed: client-chosen names stay unbounded.
        listed = target is not None and self.catalog.knows(context.route, target)
        flow.span = self.telemetry.request_span(
            flow.method,
            target,
            tool_label=target if listed else names.OTHER_LABEL,
            route=context.route,
            session_id=context.session_id or None,
            protocol_version=context.protocol_version or None,
            request_id=flow.request.get("id"),
            meta_traceparent=_text(meta.get("traceparent")),
            meta_tracestate=_text(meta.get("tracestate")),
            header_traceparent=context.headers.get("traceparent"),
            header_tracestate=context.headers.get("tracestate"),
        )

    def response(self, flow: Flow) -> None:
        span = flow.span
        if span is None:
            return
        decision = flow.decision
        if decision is not None:
            violated = sorted({v.policy for v in decision.violations})
            span.set_decision(decision.decision, decision.matched, violated)
        response = flow.response or {}
        error = response.get("error")
        if isinstance(error, dict) and isinstance(error.get("code"), int):
            span.set_error(error["code"], _text(error.get("message")))
        elif decision is None or decision.decision != "deny":
            result = response.get("result")
            if isinstance(result, dict) and result.get("isError") is True:
                span.set_error("tool_error", "the tool reported an error")
        span.end()
        if decision is not None and self.decision_log is not None:
            self._log(flow, decision, span)

    def _log(self, flow: Flow, decision: Decision, span: RequestSpan) -> None:
        context = flow.context
        assert self.decision_log is not None
        record: dict[str, Any] = {
            "policy_revision": self.policy_revision(),
            "trace_id": span.trace_id,
            "route": context.route,
            "session_id": context.session_id,
            "client_id": context.client_id,
            "tool": flow.tool_call.name if flow.tool_call is not None else "",
            "decision": decision.decision,
            # Tokens are never logged: a message quoting one is logged without it.
            "violations": [{"policy": v.policy, "message": v.loggable} for v in decision.violations],
            "mutations": [{"policy": m.policy, "path": m.path} for m in decision.mutations],
            "args": decision.args,
            "duration_ms": round((perf_counter() - flow.started) * 1000, 3),
        }
        if self._records_arguments and flow.tool_call is not None:
            # As the client sent them: a mutation's rewrite is in "args".
            record.update(_outcome(flow), arguments=flow.tool_call.arguments)
        self.decision_log.write(record)


def _outcome(flow: Flow) -> dict[str, Any]:
    """``ok`` and ``result`` as ``session.calls`` remembers them (nothing for a local answer)."""
    result = None if flow.answered_locally else (flow.response or {}).get("result")
    if not isinstance(result, dict):
        return {"ok": False, "result": None}
    return {"ok": result.get("isError") is not True, "result": remembered(result.get("structuredContent"))}


class UpstreamTraceAddon(BaseAddon):
    """The CLIENT span of each forwarded request, and its trace context upstream."""

    after = (TracingAddon,)  # its span is the parent

    def request(self, flow: Flow) -> None:
        span = flow.span
        if span is None:
            return
        upstream = span.upstream_span()
        flow.upstream_span = upstream
        if upstream.meta:
            params = flow.params
            flow.request = {**flow.request, "params": {**params, "_meta": {**_meta(params), **upstream.meta}}}
            flow.upstream_headers = upstream.headers

    def response(self, flow: Flow) -> None:
        upstream = flow.upstream_span
        if upstream is None:
            return
        if flow.error is not None:
            upstream.set_error("upstream_error", flow.error)
        upstream.end()
