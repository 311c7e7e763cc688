"""The metric instruments, created once per process and shared by every request."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.metrics import Counter, Histogram, Meter

from mcpfence.telemetry import names

# The semantic conventions' advice for durations in seconds; the SDK default buckets
# are sized for milliseconds and would put every call in the first one.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


@dataclass(frozen=True, slots=True)
class Instruments:
    decisions: Counter
    operation_duration: Histogram
    upstream_duration: Histogram
    policy_reloads: Counter

    @classmethod
    def create(cls, meter: Meter) -> Instruments:
        return cls(
            decisions=meter.create_counter(
                names.DECISIONS,
                unit="{decision}",
                description="Policy decisions on tools/call, by route, tool, decision and policy.",
            ),
            operation_duration=meter.create_histogram(
                names.MCP_SERVER_OPERATION_DURATION,
                unit="s",
                description="MCP request duration as seen by mcpfence, upstream call included.",
                explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
            ),
            upstream_duration=meter.create_histogram(
                names.UPSTREAM_DURATION,
                unit="s",
                description="Duration of the forwarded request to the upstream MCP server.",
                explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
            ),
            policy_reloads=meter.create_counter(
                names.POLICY_RELOADS,
                unit="{reload}",
                description="Policy set reloads, by result (ok or error).",
            ),
        )
