"""Every span, attribute and metric name mcpfence emits, in one place.

Dashboards, alerts and the deploy tests depend on these strings, so they live here
rather than inline; MCP names come from the OpenTelemetry semantic conventions.
"""

from __future__ import annotations

import typing
from typing import Final

from mcp import types
from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import (
    GEN_AI_OPERATION_NAME,
    GEN_AI_TOOL_NAME,
    GenAiOperationNameValues,
)
from opentelemetry.semconv._incubating.attributes.jsonrpc_attributes import JSONRPC_REQUEST_ID
from opentelemetry.semconv._incubating.attributes.mcp_attributes import (
    MCP_METHOD_NAME,
    MCP_PROTOCOL_VERSION,
    MCP_SESSION_ID,
)
from opentelemetry.semconv._incubating.attributes.rpc_attributes import RPC_RESPONSE_STATUS_CODE
from opentelemetry.semconv._incubating.metrics.mcp_metrics import MCP_SERVER_OPERATION_DURATION
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE

__all__ = [
    "DECISION",
    "DECISIONS",
    "ERROR_TYPE",
    "EXECUTE_TOOL",
    "GEN_AI_OPERATION_NAME",
    "GEN_AI_TOOL_NAME",
    "JSONRPC_REQUEST_ID",
    "KNOWN_METHODS",
    "MCP_METHOD_NAME",
    "MCP_PROTOCOL_VERSION",
    "MCP_SERVER_OPERATION_DURATION",
    "MCP_SESSION_ID",
    "OTHER_LABEL",
    "POLICIES_MATCHED",
    "POLICIES_VIOLATED",
    "POLICY_RELOADS",
    "POLICY_SPAN",
    "ROUTE",
    "RPC_RESPONSE_STATUS_CODE",
    "TOOL_ERROR",
    "UPSTREAM_DURATION",
]

EXECUTE_TOOL: Final = GenAiOperationNameValues.EXECUTE_TOOL.value
TOOL_ERROR: Final = "tool_error"
"""``error.type`` for a result with ``isError: true``: a JSON-RPC success that failed."""

ROUTE: Final = "mcpfence.route"
DECISION: Final = "mcpfence.decision"
POLICIES_MATCHED: Final = "mcpfence.policies.matched"
POLICIES_VIOLATED: Final = "mcpfence.policies.violated"

POLICY_SPAN: Final = "mcpfence.policy"

DECISIONS: Final = "mcpfence.decisions"
UPSTREAM_DURATION: Final = "mcpfence.upstream.duration"
POLICY_RELOADS: Final = "mcpfence.policy.reloads"

OTHER_LABEL: Final = "other"
"""The metric label for a name a client chose: a method MCP does not define, a tool the
route never listed. Labels stay bounded whatever clients send; spans keep the real name."""


def _mcp_methods() -> frozenset[str]:
    unions = (types.ClientRequest, types.ClientNotification, types.ServerRequest, types.ServerNotification)
    return frozenset(
        method
        for union in unions
        for message in typing.get_args(union)
        for method in typing.get_args(message.model_fields["method"].annotation)
    )


KNOWN_METHODS: Final = _mcp_methods()

