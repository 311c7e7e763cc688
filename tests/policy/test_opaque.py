"""Opaque tokens (docs/reference/policies.md#opaque-tokens): format guard and detection of edited copies."""

from __future__ import annotations

import re

import pytest

from mcpfence.policy import PolicySet, TokenMemory, harvest
from tests.policy.conftest import Loader
from tests.policy.helpers import call, policy

PATTERN = r"^[A-Za-z0-9+/_%-]+={0,2}$"
TOKEN = "Xy9+Ab/Q3="


@pytest.fixture
def policies(load: Loader) -> PolicySet:
    return load(policy("blob", opaque=[{"path": "/blob", "pattern": PATTERN}]))


def messages(policies: PolicySet, blob: object, known: list[str] | TokenMemory) -> list[str]:
    decision = policies.decide(call({"blob": blob}, known_tokens=known))
    return [v.message for v in decision.violations]


def test_a_verbatim_known_token_passes(policies: PolicySet) -> None:
    assert messages(policies, TOKEN, [TOKEN]) == []


def test_a_token_never_seen_before_passes(policies: PolicySet) -> None:
    assert messages(policies, "Fresh123", [TOKEN]) == []


def test_an_absent_opaque_argument_is_not_checked(policies: PolicySet) -> None:
    assert policies.decide(call({"other": 1}, known_tokens=[TOKEN])).decision == "allow"


def test_a_non_string_token_is_a_violation(policies: PolicySet) -> None:
    assert messages(policies, 12345, []) == ["/blob must be an opaque token string"]


def test_a_token_not_matching_the_pattern_is_a_violation(policies: PolicySet) -> None:
    assert messages(policies, "has spaces!", []) == [
        "/blob is not a well-formed token; pass it exactly as the tool returned it"
    ]


@pytest.mark.parametrize(
    "edited",
    [
        pytest.param(TOKEN.lower(), id="case-change"),
        pytest.param(TOKEN.upper(), id="upper-case"),
        pytest.param("Xy9%2BAb%2FQ3%3D", id="url-encoded"),
        pytest.param(TOKEN.rstrip("="), id="padding-removed"),
        pytest.param(TOKEN + "=", id="padding-added"),
    ],
)
def test_an_edited_copy_of_a_known_token_is_denied_quoting_the_original(
    policies: PolicySet, edited: str
) -> None:
    assert messages(policies, edited, [TOKEN]) == [
        f"/blob was altered; pass the token exactly as returned earlier: {TOKEN}"
    ]


def test_a_trimmed_copy_is_detected(load: Loader) -> None:
    policies = load(policy("blob", opaque=[{"path": "/blob"}]))

    assert messages(policies, "abc", [" abc\n"]) == [
        "/blob was altered; pass the token exactly as returned earlier:  abc\n"
    ]


def test_a_url_decoded_copy_is_detected(load: Loader) -> None:
    policies = load(policy("blob", opaque=[{"path": "/blob"}]))

    assert messages(policies, "a+b/c", ["a%2Bb%2Fc"]) == [
        "/blob was altered; pass the token exactly as returned earlier: a%2Bb%2Fc"
    ]


def test_an_edited_copy_failing_the_pattern_still_quotes_the_original(load: Loader) -> None:
    policies = load(policy("blob", opaque=[{"path": "/blob", "pattern": "^[A-Za-z0-9+/]+=*$"}]))

    assert messages(policies, "Xy9%2BAb%2FQ3%3D", [TOKEN]) == [
        f"/blob was altered; pass the token exactly as returned earlier: {TOKEN}"
    ]


def test_a_token_memory_is_reused_as_the_index(policies: PolicySet) -> None:
    memory = TokenMemory([TOKEN])

    assert messages(policies, TOKEN.lower(), memory) != []
    memory.discard(TOKEN)
    assert messages(policies, TOKEN.lower(), memory) == []


def test_forgetting_one_of_two_tokens_alike_keeps_the_other_detectable() -> None:
    memory = TokenMemory(["ABC123", "abc123"])
    memory.discard("abc123")
    assert memory.original_of("Abc123") == "ABC123"


def test_opaque_patterns_lists_each_pattern_once(load: Loader) -> None:
    policies = load(
        policy("a", opaque=[{"path": "/blob", "pattern": PATTERN}]),
        policy("b", opaque=[{"path": "/blob", "pattern": PATTERN}, {"path": "/id"}]),
    )

    assert [p.pattern for p in policies.opaque_patterns()] == [PATTERN]


def test_harvest_finds_tokens_as_values_and_inside_link_queries() -> None:
    result = {
        "contacts": [{"blob": "AbC123=="}, {"name": "Jo Doe"}],
        "link": "https://t.example/c?blob=QkxPQg%3D%3D&x=1",
    }

    found = list(harvest(result, [re.compile(r"^[A-Za-z0-9]{6,}={0,2}$")]))

    assert found == ["AbC123==", "QkxPQg=="]


def test_harvest_searches_text_content_that_is_json() -> None:
    result = {"content": [{"type": "text", "text": '{"items": [{"blob": "AbC123=="}]}'}]}

    assert list(harvest(result, [re.compile(r"^[A-Za-z0-9]{6,}={0,2}$")])) == ["AbC123=="]
