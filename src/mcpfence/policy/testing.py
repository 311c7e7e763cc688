"""Running ``kind: PolicyTest`` cases against the policies they name.

See docs/reference/policies.md#testing-policies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mcpfence.jsonrpc import canonical
from mcpfence.policy.argschema import schema_check
from mcpfence.policy.context import clock_at
from mcpfence.policy.decision import Decision, ToolCall
from mcpfence.policy.engine import PolicySet
from mcpfence.policy.loader import load_policy_set
from mcpfence.policy.models import Expectation, PolicyTest, PolicyTestCase
from mcpfence.yamlsource import YamlDocument


@dataclass(frozen=True)
class CaseResult:
    """One case's outcome: every mismatch, so a failing case explains itself in one line."""

    name: str
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failures

    def __str__(self) -> str:
        return f"PASS {self.name}" if self.passed else f"FAIL {self.name}: {'; '.join(self.failures)}"


def policies_under_test(doc: YamlDocument, test: PolicyTest) -> PolicySet:
    """The policy set a test file names, paths relative to the test file."""
    base = Path(doc.file).parent
    return load_policy_set([base / path for path in test.spec.policies])


def case_call(case: PolicyTestCase) -> ToolCall:
    """The call a case decides, with the context it declares."""
    return ToolCall(
        route=case.route,
        tool=case.tool,
        args=case.args,
        annotations=case.annotations,
        session_id=case.session.id,
        session_calls=case.session.calls,
        client_id=case.client.id,
        known_tokens=case.known_tokens,
        **schema_check(case.inputSchema, "enforce"),
    )


def decide_case(policies: PolicySet, case: PolicyTestCase) -> Decision:
    """The decision on a case's call, at the case's ``now`` if it fixes one."""
    return policies.decide(case_call(case), clock_at(case.now))


def run_case(policies: PolicySet, case: PolicyTestCase) -> CaseResult:
    """Decide the call with the context the case declares; list how it differs from ``expect``."""
    decision = decide_case(policies, case)
    return CaseResult(case.name, tuple(_mismatches(case.expect, decision)))


def _mismatches(expect: Expectation, decision: Decision) -> list[str]:
    found = []
    if expect.decision is not None and expect.decision != decision.decision:
        reasons = "; ".join(f"{v.policy}: {v.message}" for v in decision.violations)
        found.append(
            f"expected decision {expect.decision}, got {decision.decision}"
            + (f" ({reasons})" if reasons else "")
        )
    if expect.args is not None:
        want_args, got_args = canonical(expect.args), canonical(decision.args)
        if want_args != got_args:
            found.append(f"expected args {want_args.decode()}, got {got_args.decode()}")
    if expect.violations is not None:
        want = sorted(set(expect.violations))
        got = sorted({v.policy for v in decision.violations})
        if want != got:
            found.append(f"expected violations [{', '.join(want)}], got [{', '.join(got)}]")
    for text in expect.messages or ():
        if not any(text in v.message for v in decision.violations):
            messages = [v.message for v in decision.violations]
            found.append(f"expected a violation message containing {text!r}, got {messages}")
    return found
