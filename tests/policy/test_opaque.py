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


def test_token_patterns_lists_each_pattern_once(load: Loader) -> None:
    policies = load(
        policy("a", opaque=[{"path": "/blob", "pattern": PATTERN}]),
        policy("b", opaque=[{"path": "/blob", "pattern": PATTERN}]),
    )

    assert policies.token_patterns is not None
    assert [p.pattern for p in policies.token_patterns] == [PATTERN]


def test_a_rule_without_a_pattern_makes_every_token_like_string_a_token(load: Loader) -> None:
    policies = load(
        policy("a", opaque=[{"path": "/blob", "pattern": PATTERN}]),
        policy("b", opaque=[{"path": "/id"}]),
    )

    assert policies.harvests_tokens and policies.token_patterns is None


def test_without_patterns_harvest_keeps_strings_without_whitespace() -> None:
    result = {"blob": "encAbc890XYZ", "name": "Jo Doe", "tier": "Gold", "cursor": "b2Zmc2V0OjMw"}

    assert list(harvest(result, None)) == ["encAbc890XYZ", "b2Zmc2V0OjMw"]


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


def test_harvest_survives_deeply_nested_json_in_a_result_string() -> None:
    nested = "[" * 100_000 + '"AbC123=="' + "]" * 100_000
    result = {"content": [{"type": "text", "text": nested}], "blob": "XyZ789=="}

    found = list(harvest(result, [re.compile(r"^[A-Za-z0-9]{6,}={0,2}$")]))

    assert "XyZ789==" in found


def test_harvest_does_not_search_past_its_nesting_bound() -> None:
    deep: object = "Hidden123=="
    for _ in range(200):
        deep = [deep]
    result = {"deep": deep, "text": "[" * 500 + '"Inner123=="' + "]" * 500, "blob": "XyZ789=="}

    assert list(harvest(result, [re.compile(r"^[A-Za-z0-9]{6,}={0,2}$")])) == ["XyZ789=="]


BLOB = "Zk9vQmFyQmF6UXV4LTEyMzQ1Njc4OTA"


@pytest.fixture
def any_token(load: Loader) -> PolicySet:
    """An opaque rule with no pattern: a token is whatever the tool accepts."""
    return load(policy("blob", opaque=[{"path": "/blob"}]))


@pytest.mark.parametrize("unseen", ["encAbc890XYZ", "xyz123encBlobData", "a", "with spaces ok"])
def test_without_a_pattern_an_unseen_token_of_any_shape_passes(any_token: PolicySet, unseen: str) -> None:
    assert messages(any_token, unseen, [BLOB]) == []


@pytest.mark.parametrize(
    "edited",
    [
        pytest.param(BLOB[:-1], id="last-character-cut"),
        pytest.param(BLOB[:20], id="cut-in-half"),
        pytest.param(BLOB[:10] + "x" + BLOB[11:], id="one-character-replaced"),
        pytest.param(BLOB[:2] + "x" + BLOB[3:], id="one-character-replaced-near-the-start"),
        pytest.param(BLOB[1:], id="first-character-dropped"),
        pytest.param(BLOB[:10] + BLOB[11:], id="one-character-dropped"),
        pytest.param(BLOB[:10] + "Q" + BLOB[10:], id="one-character-inserted"),
        pytest.param(BLOB[:10] + BLOB[11] + BLOB[10] + BLOB[12:], id="neighbours-swapped"),
        pytest.param(BLOB + "==", id="padded"),
        pytest.param(f" {BLOB}\n", id="whitespace"),
        pytest.param(BLOB.swapcase(), id="case"),
        pytest.param(f"https://shop.example.com/sale?utm_source=x&blob={BLOB}", id="whole-link"),
    ],
)
def test_an_edited_copy_of_a_seen_token_is_refused_quoting_it(any_token: PolicySet, edited: str) -> None:
    assert messages(any_token, edited, [BLOB]) == [
        f"/blob was altered; pass the token exactly as returned earlier: {BLOB}"
    ]


def test_a_short_prefix_or_a_slip_between_short_values_is_not_an_edit(any_token: PolicySet) -> None:
    assert messages(any_token, BLOB[:7], [BLOB]) == []
    assert messages(any_token, "ORD-20261102", ["ORD-20261101"]) == []


def test_a_cut_short_token_is_found_among_many(any_token: PolicySet) -> None:
    known = TokenMemory(f"tok{n:05d}abcdefghijklmnop" for n in range(500))

    assert messages(any_token, "tok00250abcdefgh", known) == [
        "/blob was altered; pass the token exactly as returned earlier: tok00250abcdefghijklmnop"
    ]


def test_forgetting_a_token_forgets_its_prefix_and_slip_indexes() -> None:
    memory = TokenMemory([BLOB])
    memory.discard(BLOB)

    assert memory.original_of(BLOB[:-1]) is None
    assert memory.original_of(BLOB[:10] + "x" + BLOB[11:]) is None
