"""Where the argument check sits in a decision: after mutations, before validations."""

from __future__ import annotations

from typing import Any

from mcpfence.policy.argschema import INPUT_SCHEMA_POLICY, compile_input_schema
from tests.policy.conftest import Loader
from tests.policy.helpers import call, policy

SCHEMA = compile_input_schema(
    {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
)


def checked(args: dict[str, Any], mode: str = "enforce", **context: Any) -> Any:
    return call(args, input_schema=SCHEMA, schema_mode=mode, **context)


def test_without_policies_a_bad_type_is_denied(load: Loader) -> None:
    decision = load().decide(checked({"n": "412"}))
    assert decision.decision == "deny"
    assert [v.policy for v in decision.violations] == [INPUT_SCHEMA_POLICY]


def test_the_check_judges_the_mutated_arguments(load: Loader) -> None:
    policies = load(policy("to-int", mutations=[{"path": "/n", "expression": "int(args.n)"}]))
    decision = policies.decide(checked({"n": "412"}))
    assert decision.decision == "mutate"
    assert decision.args == {"n": 412}


def test_a_schema_denial_skips_the_policies_validations(load: Loader) -> None:
    policies = load(policy("small", validations=[{"expression": "args.n < 10", "message": "small"}]))
    decision = policies.decide(checked({"n": "412"}))
    assert [v.policy for v in decision.violations] == [INPUT_SCHEMA_POLICY]


def test_audit_mode_records_and_still_runs_validations(load: Loader) -> None:
    policies = load(policy("present", validations=[{"expression": "has(args.m)", "message": "m"}]))
    decision = policies.decide(checked({"n": "412"}, mode="audit"))
    assert decision.decision == "deny"
    assert [(v.policy, v.action) for v in decision.violations] == [
        (INPUT_SCHEMA_POLICY, "audit"),
        ("present", "enforce"),
    ]


def test_off_mode_does_not_check(load: Loader) -> None:
    assert load().decide(checked({"n": "412"}, mode="off")).decision == "allow"


def test_an_unknown_schema_fails_closed(load: Loader) -> None:
    decision = load().decide(call({"n": 1}, schema_mode="enforce"))
    assert decision.decision == "deny"
    assert "does not know this tool's inputSchema" in decision.violations[0].message


def test_policies_read_the_schema_as_tool_input_schema(load: Loader) -> None:
    rule = {"expression": "tool.inputSchema.properties.n.type == 'integer'", "message": "typed"}
    policies = load(policy("typed", validations=[rule]))
    assert policies.decide(checked({"n": 1})).decision == "allow"


def test_an_unknown_schema_is_an_empty_map_in_cel(load: Loader) -> None:
    policies = load(policy("untyped", validations=[{"expression": "tool.inputSchema == {}"}]))
    assert policies.decide(call({"n": 1})).decision == "allow"
