"""How a call is decided: selection, mutations, validations, actions and failure policy.

See docs/reference/policies.md#how-a-call-is-decided.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import pytest

from mcpfence.policy import Decision, Mutation, Violation, denial_result
from tests.policy.conftest import Loader
from tests.policy.helpers import call, policy

LOWERCASE = {"path": "/email", "expression": "args.email.lowerAscii()"}


def test_a_call_no_policy_matches_is_allowed_unchanged(load: Loader) -> None:
    policies = load(policy("other", tools=("delete",), validations=[{"expression": "false"}]))

    decision = policies.decide(call({"email": "A@B.C"}))

    assert decision.decision == "allow"
    assert decision.args == {"email": "A@B.C"}
    assert decision.matched == ()


def test_the_quick_allow_of_an_unmatched_call_is_an_ordinary_frozen_decision() -> None:
    args = {"email": "a@b.c"}
    allowed = Decision.allowed(args)

    assert allowed == Decision("allow", args)
    assert allowed.as_dict() == Decision("allow", args).as_dict()
    with pytest.raises(FrozenInstanceError):
        allowed.decision = "deny"  # type: ignore[misc]


def test_policies_are_selected_in_file_order(load: Loader) -> None:
    policies = load(policy("zeta"), policy("alpha"), policy("mid"))

    assert policies.decide(call({})).matched == ("zeta", "alpha", "mid")


def test_route_globs_restrict_a_policy_to_matching_routes(load: Loader) -> None:
    policies = load(policy("ipost-only", match={"routes": ["ipost*"]}, validations=[{"expression": "false"}]))

    assert policies.decide(call({}, route="postmark")).decision == "allow"
    assert policies.decide(call({}, route="ipost-eu")).decision == "deny"


def test_tool_globs_select_every_matching_tool(load: Loader) -> None:
    policies = load(policy("creates", tools=("create_*",), validations=[{"expression": "false"}]))

    assert policies.decide(call({}, tool="create_contact")).decision == "deny"
    assert policies.decide(call({}, tool="get_contact")).decision == "allow"


def test_a_false_when_leaves_the_policy_unselected(load: Loader) -> None:
    policies = load(policy("emails", when="has(args.emails)", validations=[{"expression": "false"}]))

    decision = policies.decide(call({"id": "1"}))

    assert decision.decision == "allow"
    assert decision.matched == ()


def test_a_mutation_rewrites_the_forwarded_arguments(load: Loader) -> None:
    policies = load(policy("lower", mutations=[LOWERCASE]))

    decision = policies.decide(call({"email": "John@Example.COM", "id": 1}))

    assert decision.decision == "mutate"
    assert decision.args == {"email": "john@example.com", "id": 1}
    assert decision.mutations == (Mutation("lower", "/email"),)


def test_the_callers_arguments_are_never_modified_in_place(load: Loader) -> None:
    policies = load(policy("lower", mutations=[LOWERCASE]))
    args = {"email": "A@B.C"}

    policies.decide(call(args))

    assert args == {"email": "A@B.C"}


def test_a_mutation_that_changes_nothing_is_an_allow(load: Loader) -> None:
    policies = load(policy("lower", mutations=[LOWERCASE]))

    decision = policies.decide(call({"email": "a@b.c"}))

    assert decision.decision == "allow"
    assert decision.mutations == ()


def test_the_second_mutation_sees_the_first(load: Loader) -> None:
    policies = load(
        policy("trim", mutations=[{"path": "/email", "expression": "args.email.trim()"}]),
        policy("tag", mutations=[{"path": "/tag", "expression": "args.email + '!'"}]),
    )

    decision = policies.decide(call({"email": "  a@b.c  "}))

    assert decision.args == {"email": "a@b.c", "tag": "a@b.c!"}
    assert decision.mutations == (Mutation("trim", "/email"), Mutation("tag", "/tag"))


def test_mutations_within_one_policy_run_in_order(load: Loader) -> None:
    mutations = [{"path": "/n", "expression": "args.n + 1"}, {"path": "/n", "expression": "args.n * 10"}]
    policies = load(policy("arith", mutations=mutations))

    assert policies.decide(call({"n": 1})).args == {"n": 20}


def test_a_mutation_creates_a_missing_member(load: Loader) -> None:
    policies = load(policy("stream", mutations=[{"path": "/MessageStream", "expression": "'outbound'"}]))

    assert policies.decide(call({})).args == {"MessageStream": "outbound"}


def test_a_dash_pointer_appends_to_an_array(load: Loader) -> None:
    policies = load(policy("bcc", mutations=[{"path": "/to/-", "expression": "'audit@example.com'"}]))

    assert policies.decide(call({"to": ["a@b.c"]})).args == {"to": ["a@b.c", "audit@example.com"]}


def test_a_mutation_can_write_maps_and_lists_as_json(load: Loader) -> None:
    expression = "{'tags': ['a', 'b'], 'n': 1.5, 'none': null}"
    policies = load(policy("meta", mutations=[{"path": "/meta", "expression": expression}]))

    assert policies.decide(call({})).args == {"meta": {"tags": ["a", "b"], "n": 1.5, "none": None}}


def test_validations_run_on_the_arguments_after_every_mutation(load: Loader) -> None:
    policies = load(
        policy("check", validations=[{"expression": "args.email == args.email.lowerAscii()"}]),
        policy("lower", mutations=[LOWERCASE]),
    )

    assert policies.decide(call({"email": "A@B.C"})).decision == "mutate"


def test_a_failed_validation_of_an_enforce_policy_denies(load: Loader) -> None:
    rule = {"expression": "args.n < 10", "message": "n must be below 10"}
    policies = load(policy("small", validations=[rule]))

    decision = policies.decide(call({"n": 12}))

    assert decision.decision == "deny"
    assert decision.violations == (Violation("small", "n must be below 10", "enforce"),)


def test_a_failed_validation_of_an_audit_policy_is_recorded_and_forwarded(load: Loader) -> None:
    rule = {"expression": "args.n < 10", "message": "n must be below 10"}
    policies = load(
        policy("small", action="audit", validations=[rule]), policy("lower", mutations=[LOWERCASE])
    )

    decision = policies.decide(call({"n": 12, "email": "A@B.C"}))

    assert decision.decision == "audit"
    assert decision.args == {"n": 12, "email": "a@b.c"}
    assert decision.violations == (Violation("small", "n must be below 10", "audit"),)


def test_enforce_wins_over_audit(load: Loader) -> None:
    policies = load(
        policy("watch", action="audit", validations=[{"expression": "false"}]),
        policy("block", validations=[{"expression": "false"}]),
    )

    decision = policies.decide(call({}))

    assert decision.decision == "deny"
    assert [v.action for v in decision.violations] == ["audit", "enforce"]


def test_message_expression_explains_the_violation(load: Loader) -> None:
    rule = {
        "expression": "args.emails.all(e, e.contains('@'))",
        "message": "emails must be addresses",
        "messageExpression": "'not an email address: ' + args.emails.filter(e, !e.contains('@'))[0]",
    }
    policies = load(policy("emails", validations=[rule]))

    decision = policies.decide(call({"emails": ["a@b.c", "nobody"]}))

    assert decision.violations[0].message == "not an email address: nobody"


def test_a_failing_message_expression_falls_back_to_message(load: Loader) -> None:
    rule = {"expression": "false", "message": "always wrong", "messageExpression": "args.missing"}
    policies = load(policy("p", validations=[rule]))

    assert policies.decide(call({})).violations[0].message == "always wrong"


def test_without_any_message_the_violation_names_the_policy_and_rule(load: Loader) -> None:
    policies = load(policy("p", validations=[{"expression": "args.n > 1"}]))

    assert policies.decide(call({"n": 0})).violations[0].message == "policy p requires args.n > 1"


def test_an_expression_error_under_fail_is_a_violation_without_argument_values(load: Loader) -> None:
    policies = load(policy("p", validations=[{"expression": "args.secret.size() > 100"}]))

    decision = policies.decide(call({"other": "hunter2"}))

    assert decision.decision == "deny"
    assert decision.violations[0].message == "validation 1 failed to evaluate: no such key"


def test_an_expression_error_under_ignore_is_skipped(load: Loader) -> None:
    policies = load(policy("p", failurePolicy="Ignore", validations=[{"expression": "args.secret == 'x'"}]))

    assert policies.decide(call({"other": 1})).decision == "allow"


def test_a_wrong_type_at_runtime_is_an_expression_error(load: Loader) -> None:
    policies = load(policy("p", validations=[{"expression": "args.n + 1 > 2"}]))

    message = policies.decide(call({"n": "three"})).violations[0].message

    assert message == "validation 1 failed to evaluate: wrong type (no matching overload)"


def test_a_dyn_validation_that_is_not_a_bool_is_an_expression_error(load: Loader) -> None:
    policies = load(policy("p", validations=[{"expression": "args.flag"}]))

    assert policies.decide(call({"flag": "yes"})).violations[0].message == (
        "validation 1 failed to evaluate: result is not a bool"
    )


def test_a_when_that_errors_under_fail_selects_and_violates_the_policy(load: Loader) -> None:
    policies = load(policy("p", when="args.kind == 'x'", mutations=[LOWERCASE]))

    decision = policies.decide(call({"email": "A@B.C"}))

    assert decision.decision == "deny"
    assert decision.matched == ("p",)
    assert decision.violations[0].message == "the when condition failed: no such key"
    assert decision.args == {"email": "A@B.C"}


def test_a_when_that_errors_under_ignore_leaves_the_policy_unselected(load: Loader) -> None:
    policies = load(policy("p", when="args.kind == 'x'", failurePolicy="Ignore"))

    assert policies.decide(call({})).matched == ()


def test_a_failing_mutation_under_fail_denies(load: Loader) -> None:
    policies = load(policy("p", mutations=[{"path": "/a/b", "expression": "1"}]))

    decision = policies.decide(call({}))

    assert decision.decision == "deny"
    assert decision.violations[0].message.startswith("mutation /a/b failed: ")


def test_a_mutation_result_without_a_json_form_is_an_expression_error(load: Loader) -> None:
    policies = load(policy("p", mutations=[{"path": "/at", "expression": "now"}]))

    assert policies.decide(call({})).violations[0].message == (
        "mutation /at failed: result is a timestamp or duration; convert it with string()"
    )


def test_a_mutation_producing_a_map_with_non_string_keys_is_an_expression_error(load: Loader) -> None:
    policies = load(policy("p", mutations=[{"path": "/m", "expression": "{1: 'one'}"}]))

    assert "keys that are not strings" in policies.decide(call({})).violations[0].message


def test_arguments_beyond_the_size_cap_are_denied_when_a_policy_applies(load: Loader) -> None:
    policies = load(policy("p"))

    decision = policies.decide(call({"blob": "x" * 300_000}))

    assert decision.decision == "deny"
    assert decision.violations[0].policy == "mcpfence/limits"
    assert "the limit is 262144" in decision.violations[0].message


def test_a_policy_for_another_tool_is_never_evaluated(load: Loader) -> None:
    # If the index evaluated it, its failing when would deny under Fail.
    policies = load(policy("other", tools=("delete_*",), when="1 / 0 == 1"), policy("mine"))

    decision = policies.decide(call({}, tool="send"))

    assert decision.decision == "allow"
    assert decision.matched == ("mine",)


def test_guidance_lists_every_policy_matching_the_tool_regardless_of_when(load: Loader) -> None:
    policies = load(
        policy("a", when="false", guidance="Emails are lowercased."),
        policy("b", guidance="Use the broadcast stream for newsletters."),
        policy("c", tools=("other",), guidance="Not for send."),
    )

    assert policies.guidance("mail", "send") == [
        "Emails are lowercased.",
        "Use the broadcast stream for newsletters.",
    ]


def test_denial_result_is_a_tool_error_naming_each_enforced_violation(load: Loader) -> None:
    policies = load(
        policy("watch", action="audit", validations=[{"expression": "false", "message": "m0"}]),
        policy("one", validations=[{"expression": "false", "message": "m1"}]),
        policy("two", validations=[{"expression": "false", "message": "m2"}]),
    )

    result = denial_result(policies.decide(call({})))

    assert result == {
        "isError": True,
        "content": [{"type": "text", "text": "Blocked by policy one: m1\nBlocked by policy two: m2"}],
        "_meta": {
            "mcpfence/decision": {
                "decision": "deny",
                "violations": [{"policy": "one", "message": "m1"}, {"policy": "two", "message": "m2"}],
            }
        },
    }


def test_the_revision_changes_with_the_content(load: Loader) -> None:
    first = load(policy("p", validations=[{"expression": "true"}])).revision
    again = load(policy("p", validations=[{"expression": "true"}])).revision
    changed = load(policy("p", validations=[{"expression": "false"}])).revision

    assert first == again != changed
    assert len(first) == 64


def test_a_nul_in_an_argument_cannot_hide_what_follows_it_from_a_validation(load: Loader) -> None:
    """The CEL runtime reads strings only up to U+0000: ``"\\x00rm -rf"`` would look empty
    to ``contains("rm")``. A checked call carrying NUL is refused instead."""
    policies = load(policy("no-rm", validations=[{"expression": '!args.cmd.contains("rm")'}]))

    for args in ({"cmd": "\x00rm -rf /"}, {"cmd": ["ok", "a\x00rm"]}, {"cmd": "ok", "k\x00": 1}):
        decision = policies.decide(call(args))
        assert decision.decision == "deny", args
        assert "U+0000" in decision.violations[0].message


def test_a_literal_backslash_u0000_is_not_a_nul(load: Loader) -> None:
    policies = load(policy("no-rm", validations=[{"expression": '!args.cmd.contains("rm")'}]))

    assert policies.decide(call({"cmd": "\\u0000 is text"})).decision == "allow"


def test_a_routes_session_use_names_what_its_policies_read_of_the_session(load: Loader) -> None:
    history = [{"expression": "size(session.calls) < 50"}]
    policies = load(
        policy("history", match={"routes": ["crm"]}, validations=history),
        policy("verbatim", match={"routes": ["crm", "mail"]}, opaque=[{"path": "/id"}]),
    )

    assert policies.session_use("crm") == (True, True)
    assert policies.session_use("mail") == (False, True)
    assert policies.session_use("billing") == (False, False)
    assert not policies.uses_session("billing")
