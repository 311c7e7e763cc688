"""Validations are asked together first; any answer but ``true`` is decided one by one.

These pin that the shortcut changes nothing a policy author can see: the violations,
their order and their messages are those of evaluating every validation on its own.
"""

from __future__ import annotations

from mcpfence.policy import Violation
from tests.policy.conftest import Loader
from tests.policy.helpers import call, policy

SUBJECT = {"expression": "size(args.subject) > 0", "message": "subject is empty"}
SHORT = {"expression": "size(args.subject) <= 5", "message": "subject is long"}
NO_KEY = {"expression": "!args.body.contains('KEY')", "message": "body has a key"}


def test_a_call_passing_every_validation_of_several_policies_is_allowed(load: Loader) -> None:
    policies = load(policy("a", validations=[SUBJECT, SHORT]), policy("b", validations=[NO_KEY]))

    assert policies.decide(call({"subject": "hi", "body": "text"})).decision == "allow"


def test_violations_of_several_policies_keep_their_policy_and_rule_order(load: Loader) -> None:
    policies = load(policy("a", validations=[SUBJECT, SHORT]), policy("b", validations=[NO_KEY]))

    decision = policies.decide(call({"subject": "too long here", "body": "KEY"}))

    assert decision.violations == (
        Violation("a", "subject is long", "enforce"),
        Violation("b", "body has a key", "enforce"),
    )


def test_an_error_in_one_validation_still_reports_each_validation_on_its_own(load: Loader) -> None:
    policies = load(policy("a", validations=[{"expression": "args.missing > 1"}, SHORT]))

    decision = policies.decide(call({"subject": "much too long"}))

    assert [v.message for v in decision.violations] == [
        "validation 1 failed to evaluate: no such key",
        "subject is long",
    ]


def test_an_ignored_error_beside_passing_validations_is_still_ignored(load: Loader) -> None:
    policies = load(
        policy("a", failurePolicy="Ignore", validations=[{"expression": "args.missing > 1"}, SHORT])
    )

    assert policies.decide(call({"subject": "ok"})).decision == "allow"


def test_a_trailing_comment_does_not_hide_the_next_validation(load: Loader) -> None:
    commented = {"expression": "size(args.subject) > 0 // never empty", "message": "subject is empty"}
    policies = load(policy("a", validations=[commented, SHORT]))

    assert policies.decide(call({"subject": "much too long"})).violations[0].message == "subject is long"


def test_policies_with_params_are_asked_with_their_own_params(load: Loader) -> None:
    most = {"expression": "size(args.subject) <= params.most", "message": "over the limit"}
    limited = policy("limited", params={"most": 3}, validations=[most, SUBJECT])
    policies = load(limited, policy("b", validations=[NO_KEY, SHORT]))

    decision = policies.decide(call({"subject": "four", "body": "x"}))

    assert decision.violations == (Violation("limited", "over the limit", "enforce"),)


def test_a_validation_that_is_not_a_bool_is_still_an_error_beside_others(load: Loader) -> None:
    policies = load(policy("a", validations=[{"expression": "args.flag"}, SUBJECT]))

    assert policies.decide(call({"flag": "yes", "subject": "s"})).violations[0].message == (
        "validation 1 failed to evaluate: result is not a bool"
    )
