"""The CEL variables and functions policies see (docs/reference/policies.md#what-expressions-can-see)."""

from __future__ import annotations

from typing import Any

from tests.policy.conftest import Loader
from tests.policy.helpers import call, policy


def holds(load: Loader, expression: str, args: dict[str, Any] | None = None, **context: Any) -> bool:
    """Whether ``expression`` is true for one call (as a validation)."""
    policies = load(policy("probe", validations=[{"expression": expression}]))
    return policies.decide(call(args or {}, **context)).decision == "allow"


def test_tool_name_and_annotations(load: Loader) -> None:
    expression = "tool.name == 'send' && tool.annotations.destructiveHint == true"

    assert holds(load, expression, annotations={"destructiveHint": True})


def test_unknown_annotations_are_an_empty_map(load: Loader) -> None:
    assert holds(load, "tool.annotations.size() == 0")


def test_route_session_and_client_ids(load: Loader) -> None:
    expression = "route.name == 'mail' && session.id == 's-1' && client.id == 'ci-bot'"

    assert holds(load, expression, session_id="s-1", client_id="ci-bot")


def test_session_calls_lets_a_policy_require_an_earlier_call(load: Loader) -> None:
    expression = (
        "session.calls.exists(c, c.tool == 'get_schema' && c.ok && c.args.table == args.table)"
    )
    earlier = [{"tool": "get_schema", "args": {"table": "t1"}, "ok": True}]

    assert holds(load, expression, {"table": "t1"}, session_calls=earlier)
    assert not holds(load, expression, {"table": "t2"}, session_calls=earlier)


def test_params_are_visible_to_expressions(load: Loader) -> None:
    rule = {"expression": "args.domain in params.allowed_domains"}
    policies = load(policy("p", params={"allowed_domains": ["example.com"]}, validations=[rule]))

    assert policies.decide(call({"domain": "example.com"})).decision == "allow"
    assert policies.decide(call({"domain": "evil.test"})).decision == "deny"


def test_variables_see_earlier_variables(load: Loader) -> None:
    variables = [
        {"name": "domain", "expression": "args.email.split('@')[1]"},
        {"name": "internal", "expression": "variables.domain == 'example.com'"},
    ]
    policies = load(policy("p", variables=variables, validations=[{"expression": "variables.internal"}]))

    assert policies.decide(call({"email": "a@example.com"})).decision == "allow"
    assert policies.decide(call({"email": "a@other.org"})).decision == "deny"


def test_variables_follow_mutations(load: Loader) -> None:
    variables = [{"name": "email", "expression": "args.email"}]
    mutations = [{"path": "/email", "expression": "variables.email.lowerAscii()"}]
    validations = [{"expression": "variables.email == 'a@b.c'"}]
    policies = load(policy("p", variables=variables, mutations=mutations, validations=validations))

    assert policies.decide(call({"email": "A@B.C"})).decision == "mutate"


def test_a_failing_variable_only_fails_the_expressions_that_use_it(load: Loader) -> None:
    variables = [{"name": "emails", "expression": "args.emails"}]
    uses_it = [{"expression": "variables.emails.size() > 0"}]
    policies = load(
        policy("p", when="has(args.emails)", variables=variables, validations=uses_it),
        policy("q", variables=variables, validations=[{"expression": "true"}]),
    )

    decision = policies.decide(call({"id": "1"}))

    assert decision.decision == "allow"
    assert decision.matched == ("q",)


def test_now_is_a_timestamp(load: Loader) -> None:
    assert holds(load, "now > timestamp('2024-01-01T00:00:00Z')")


def test_glob_matches_shell_style_patterns(load: Loader) -> None:
    assert holds(load, "glob(tool.name, 's*d') && !glob(tool.name, 'S*')")


def test_the_strings_extension_is_available(load: Loader) -> None:
    assert holds(load, "'  A@B.C '.trim().lowerAscii() == 'a@b.c' && 'a,b'.split(',').size() == 2")


def test_the_math_extension_is_available(load: Loader) -> None:
    assert holds(load, "math.greatest(1, 5, 3) == 5")


def test_the_encoders_extension_is_available(load: Loader) -> None:
    assert holds(load, "base64.encode(b'hi') == 'aGk='")


def test_the_optional_extension_is_available(load: Loader) -> None:
    assert holds(load, "args.?missing.orValue('x') == 'x'", {"present": 1})


def test_lower_folds_unicode_case_where_lower_ascii_stops(load: Loader) -> None:
    args = {"email": "JÖRG@Example.COM"}

    assert holds(load, "args.email.lower() == 'jörg@example.com'", args)
    assert holds(load, "args.email.lowerAscii() == 'jÖrg@example.com'", args)
