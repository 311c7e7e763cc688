"""PolicyTest cases: what each expectation compares and how a mismatch reads.

See docs/reference/policies.md#testing-policies.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mcpfence.policy import PolicySet
from mcpfence.policy.models import PolicyTestCase
from mcpfence.policy.testing import run_case
from tests.policy.conftest import Loader
from tests.policy.helpers import policy


@pytest.fixture
def policies(load: Loader) -> PolicySet:
    return load(
        policy("lower", mutations=[{"path": "/email", "expression": "args.email.lowerAscii()"}]),
        policy("a", validations=[{"expression": "args.n < 5", "message": "n is too big"}]),
        policy("b", validations=[{"expression": "args.n < 3"}]),
    )


def case(expect: dict[str, Any], **fields: Any) -> PolicyTestCase:
    return PolicyTestCase.model_validate({"name": "c", "tool": "send", "expect": expect, **fields})


def test_a_matching_case_passes(policies: PolicySet) -> None:
    expect = {"decision": "mutate", "args": {"email": "a@b.c", "n": 1}}

    result = run_case(policies, case(expect, args={"email": "A@B.C", "n": 1}))

    assert str(result) == "PASS c"


def test_violations_are_compared_as_a_set_of_policy_names(policies: PolicySet) -> None:
    result = run_case(policies, case({"violations": ["b", "a"]}, args={"email": "x", "n": 9}))

    assert result.passed


def test_an_args_mismatch_shows_both_objects(policies: PolicySet) -> None:
    result = run_case(policies, case({"args": {"email": "A@B.C"}}, args={"email": "A@B.C"}))

    assert str(result) == 'FAIL c: expected args {"email":"A@B.C"}, got {"email":"a@b.c"}'


def test_messages_must_each_appear_in_some_violation(policies: PolicySet) -> None:
    args = {"email": "x", "n": 9}

    assert run_case(policies, case({"messages": ["too big"]}, args=args)).passed
    assert not run_case(policies, case({"messages": ["too small"]}, args=args)).passed


def test_a_wrong_decision_lists_the_violations(policies: PolicySet) -> None:
    result = run_case(policies, case({"decision": "allow"}, args={"email": "x", "n": 4}))

    assert str(result) == "FAIL c: expected decision allow, got deny (b: policy b requires args.n < 3)"


def test_a_case_must_expect_something() -> None:
    with pytest.raises(ValidationError, match="expect needs at least one of"):
        case({})
