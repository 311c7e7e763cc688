"""Observability for mcpfence: OpenTelemetry traces and metrics, and the decision log.

See docs/how-to/observability.md.

The proxy builds one :class:`Telemetry` at start (``Telemetry.setup``), opens one
:class:`RequestSpan` per inbound JSON-RPC request, and writes one
:class:`DecisionLog` line per ``tools/call``.
"""

from mcpfence.telemetry.core import Telemetry
from mcpfence.telemetry.decisionlog import DecisionLog
from mcpfence.telemetry.spans import RequestSpan, UpstreamSpan

__all__ = [
    "DecisionLog",
    "RequestSpan",
    "Telemetry",
    "UpstreamSpan",
]
