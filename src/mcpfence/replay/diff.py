"""Re-deciding recorded calls with a candidate policy set and reporting what changes.

Each session's calls are replayed in order, and each call the candidate would
forward joins the session's history (with the candidate's arguments and the
recorded outcome), so policies over ``session.calls`` see what they would have
seen. A call the proxy denied has no recorded outcome; if the candidate lets it
through it joins the history as failed (``ok: false``, no result).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mcpfence.jsonrpc import canonical
from mcpfence.policy import Decision, PolicySet, ToolCall
from mcpfence.replay.records import RecordedCall
from mcpfence.session import SessionMemory
from mcpfence.telemetry.redaction import REDACTED

# A policy named when a change has no policy to blame (it cannot happen with real logs).
UNATTRIBUTED = "(none)"


@dataclass(frozen=True)
class Change:
    """One recorded call the candidate decides differently."""

    call: RecordedCall
    kind: str  # "allow->deny", ...; "mutate->mutate" when both rewrite, differently
    policies: tuple[str, ...]
    after: Decision

    def example(self) -> dict[str, Any]:
        call = self.call
        return {
            "route": call.route,
            "tool": call.tool,
            "session_id": call.session_id,
            "before": call.decision,
            "after": self.after.decision,
            "violations": [{"policy": v.policy, "message": v.message} for v in self.after.violations],
        }


@dataclass
class ReplayReport:
    """How many calls were replayed and which of them changed."""

    calls: int = 0
    changes: list[Change] = field(default_factory=list)

    def by_policy(self) -> dict[str, dict[str, int]]:
        counts: dict[str, Counter[str]] = {}
        for change in self.changes:
            for policy in change.policies:
                counts.setdefault(policy, Counter())[change.kind] += 1
        return {policy: dict(sorted(kinds.items())) for policy, kinds in sorted(counts.items())}

    def examples(self, per_policy: int = 3) -> list[Change]:
        """A few changes for each policy, in log order, each listed once."""
        shown: Counter[str] = Counter()
        picked: list[Change] = []
        for change in self.changes:
            wanted = [p for p in change.policies if shown[p] < per_policy]
            if wanted:
                shown.update(wanted)
                picked.append(change)
        return picked

    def as_json(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "changed": len(self.changes),
            "by_policy": self.by_policy(),
            "examples": [change.example() for change in self.examples()],
        }


def replay(policies: PolicySet, calls: Sequence[RecordedCall], since: datetime | None = None) -> ReplayReport:
    """Decide ``calls`` (in time order) again; report those at or after ``since`` that change.

    Calls before ``since`` are still replayed, to build the history later calls see.
    """
    memory = SessionMemory(max_sessions=10**9, ttl_seconds=float("inf"))
    report = ReplayReport()
    for call in calls:
        state = memory.get(memory.key(call.route, call.session_id, call.client_id))
        decision = policies.decide(
            ToolCall(
                route=call.route,
                tool=call.tool,
                args=call.arguments,
                session_id=call.session_id or call.client_id,
                session_calls=state.calls,
                client_id=call.client_id,
            )
        )
        if decision.decision != "deny":
            known = call.decision != "deny"  # a denied call has no outcome to replay
            state.record_call(call.tool, decision.args, known and call.ok, call.result if known else None)
        if since is not None and call.time < since:
            continue
        report.calls += 1
        if _changed(call, decision):
            kind = f"{call.decision}->{decision.decision}"
            report.changes.append(Change(call, kind, _blamed(call, decision), decision))
    return report


def _changed(call: RecordedCall, decision: Decision) -> bool:
    return (
        call.decision != decision.decision
        or _mutations(decision) != call.mutations
        or not _same_result(call, decision)
    )


def _same_result(call: RecordedCall, decision: Decision) -> bool:
    """Whether the candidate forwards what was forwarded (unknowable for redacted arguments)."""
    if _redacted(call.arguments):
        return True
    return hashlib.sha256(canonical(decision.args)).hexdigest() == call.args_sha256


def _redacted(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_redacted(item) for item in value.values())
    if isinstance(value, list):
        return any(_redacted(item) for item in value)
    return isinstance(value, str) and value == REDACTED


def _mutations(decision: Decision) -> frozenset[tuple[str, str]]:
    return frozenset((m.policy, m.path) for m in decision.mutations)


def _acting(decision: Decision) -> frozenset[str]:
    return frozenset(v.policy for v in decision.violations) | {p for p, _ in _mutations(decision)}


def _blamed(call: RecordedCall, decision: Decision) -> tuple[str, ...]:
    """The policies whose verdict differs; else those acting now; else those that acted before."""
    before, after = call.acting, _acting(decision)
    return tuple(sorted((before ^ after) or after or before)) or (UNATTRIBUTED,)
