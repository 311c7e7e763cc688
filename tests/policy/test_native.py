"""Lowered expressions answer exactly as the C++ runtime does, or leave the answer to it.

Two levels: single expressions on the edges where Python and CEL differ (each checked
against the runtime itself, never against a value written here), and whole decisions of
the shipped packs, the examples and the benchmark pack, with every argument replaced by
the spellings models send, decided with and without lowering.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mcpfence.jsonrpc import canonical
from mcpfence.policy import expressions
from mcpfence.policy.context import clock_at
from mcpfence.policy.decision import Decision, ToolCall
from mcpfence.policy.engine import PolicySet, same_json
from mcpfence.policy.expressions import Bindings, EvaluationError, compile_expression, conjunction
from mcpfence.policy.loader import load_policy_set, read_documents
from mcpfence.policy.models import PolicyTest
from mcpfence.policy.native import NotNative, lower
from mcpfence.policy.testing import case_call, policies_under_test

ROOT = Path(__file__).parents[2]

# What models send where a tool wants a bool, a number, an id or an address, and values the
# runtime takes in differently (integers past int64, Unicode the two regex engines fold apart).
SPELLINGS: list[Any] = [
    "false", "False", "true", 0, 1, -1, "0", "1", "null", None, "412", 412, 412.0, 412.5, -0.0,
    "", " ", "  Ops@Example.COM ", "a@b", "no-at-sign", "JÖRG@Example.com", "\u0131nfo@x.io",
    "x\u00a0", "\u2003pad\u2003", "\x1cx\x1f", "٣", "1e3", " 7", "+7", "007", 2**63 - 1, 2**63,
    -(2**63), 2**64, 1e300, True, False, [], ["a@b.c"], ["A@B.C ", 3], {}, {"a": 1}, [{"Email": "X@Y.z"}],
]


def runtime(source: str, data: dict[str, Any]) -> tuple[str, Any]:
    """What the C++ runtime answers: ("value", v) or ("error", category)."""
    compiled = compile_expression(source, "any")
    try:
        return "value", replace(compiled, native=None).evaluate(Bindings(data))
    except EvaluationError as exc:
        return "error", str(exc)


def lowered(source: str, data: dict[str, Any]) -> tuple[str, Any]:
    """What the lowered function answers: ("value", v) or ("runtime", None) when they defer."""
    native = lower(source)
    assert native is not None, f"{source} is not lowered"
    try:
        return "value", native(data)
    except NotNative:
        return "runtime", None


# (expression, args, whether the lowered function must answer it itself)
PROBES: list[tuple[str, dict[str, Any], bool]] = [
    ("args.a == 1", {"a": 1.0}, False),
    ("args.a == '1'", {"a": 1}, True),
    ("args.a == false", {"a": "false"}, True),
    ("args.a == false", {"a": 0}, True),
    ("args.a != null", {"a": "null"}, True),
    ("args.a < 2", {"a": 1.5}, False),
    ("args.a < 'b'", {"a": "a"}, True),
    ("args.a.b", {"a": "x"}, False),
    ("args.a[1]", {"a": [1]}, False),
    ("args.a[-1]", {"a": [1]}, False),
    ("args.a[0.0]", {"a": [1]}, False),
    ("has(args.a.b)", {"a": {"b": None}}, True),
    ("has(args.a.b)", {"a": "x"}, False),
    ("has(args.a[0].b)", {"a": [{"c": 1}]}, True),
    ("int(args.a)", {"a": "007"}, True),
    ("int(args.a)", {"a": " 7"}, False),
    ("int(args.a)", {"a": -2.9}, True),
    ("int(args.a)", {"a": "9223372036854775808"}, False),
    ("string(args.a)", {"a": 1.5}, False),
    ("string(args.a)", {"a": True}, True),
    ("string(args.a)", {"a": -12}, True),
    ("args.a + 1", {"a": 2**63 - 1}, False),
    ("args.a * 2", {"a": -(2**62) - 1}, False),
    ("-args.a", {"a": -(2**63)}, False),
    ("args.a / 2", {"a": -7}, True),
    ("args.a % 2", {"a": -7}, True),
    ("args.a / 0", {"a": 7}, False),
    ("args.a / 0.0", {"a": 1.0}, False),
    ("args.a + args.b", {"a": 1, "b": 1.0}, False),
    ("args.a + args.b", {"a": [1], "b": ["x"]}, True),
    ("args.a", {"a": 2**63}, False),
    ("args.b", {"a": 2**64, "b": 1}, False),
    ("args.a", {"a": "x\x00y"}, False),
    ("size(args.a)", {"a": "héllo😀"}, True),
    ("args.a.size()", {"a": {"x": 1, "y": 2}}, True),
    ("args.a.trim()", {"a": "\x85x\xa0\u200b\u1680"}, True),
    ("args.a.trim()", {"a": "\x1cx\x1f"}, True),
    ("args.a.trim()", {"a": "".join(map(chr, range(0x2000, 0x2030))) + "x\u3000\u205f"}, True),
    ("args.a.lowerAscii()", {"a": "ÀB"}, True),
    ("args.a.upperAscii()", {"a": "àb"}, True),
    ("args.a.lower()", {"a": "JÖRG"}, True),
    ("args.a.split('')", {"a": "a,b"}, True),
    ("args.a.split(',')", {"a": ""}, True),
    ("args.a.split(',')", {"a": ",a,,b,"}, True),
    ("args.a.join(', ')", {"a": ["x", "y"]}, True),
    ("args.a.join()", {"a": ["x", 1]}, False),
    ("args.a.replace('a', 'b')", {"a": "banana"}, True),
    ("args.a.replace('', 'b')", {"a": "ab"}, False),
    ("args.a.matches('^a$')", {"a": "a\n"}, True),
    ("args.a.matches('a.b')", {"a": "a\nb"}, True),
    ("args.a.matches('\\\\d')", {"a": "٣"}, True),
    ("args.a.matches('\\\\w')", {"a": "é"}, True),
    ("args.a.matches('\\\\s')", {"a": "\x0b"}, True),
    ("args.a.matches('[\\\\d-]+$')", {"a": "12-3"}, True),
    ("args.a.matches('(?i)password')", {"a": "PA\u017fSWORD"}, True),
    ("args.a.matches('(?i)key')", {"a": "\u212aEY"}, True),
    ("args.a.matches('x*?y{1,2}|z')", {"a": "xxyy"}, True),
    ("type(args.a) == string", {"a": "x"}, True),
    ("type(args.a) == int", {"a": True}, True),
    ("type(args.a) in [int, uint, double]", {"a": 3.5}, True),
    ("type(args.a)", {"a": "x"}, False),
    ("args.a in [1, 'a']", {"a": "a"}, True),
    ("args.a in args.m", {"a": "k", "m": {"k": 1}}, True),
    ("args.a in args.m", {"a": 1, "m": {"1": 1}}, False),
    ("args.a && true", {"a": "true"}, False),
    ("false && args.a", {"a": "x"}, True),
    ("args.a || true", {"a": 1}, False),
    ("args.a ? 1 : 2", {"a": "false"}, False),
    ("args.?a.orValue('d')", {}, True),
    ("args.?a.orValue('d')", {"a": None}, True),
    ("args.?a.?b.orValue(0)", {"a": {"b": 5}}, True),
    ("args.?a.hasValue()", {"a": 1}, True),
    ("args.a[?0].orValue(-1)", {"a": []}, True),
    ("args.?a == null", {}, False),
    ("{'k': args.a, 'j': [args.a]}", {"a": "v"}, True),
    ("args.a.all(x, x > 0)", {"a": [1, "x"]}, False),
    ("args.a.all(x, x > 0)", {"a": [0, "x"]}, True),
    ("args.a.exists(x, x == 'b')", {"a": {"a": 1, "b": 2}}, True),
    ("args.a.exists_one(x, x > 1)", {"a": [1, 2, 3]}, True),
    ("args.a.filter(x, x.startsWith('a'))", {"a": ["ab", "b", "ac"]}, True),
    ("args.a.filter(x, x.startsWith('a'))", {"a": {"ab": 1, "b": 2, "ac": 3}}, False),
    ("args.a.map(x, x)", {"a": {"k": 1}}, False),
    ("args.a.all(x, x >= 0)", {"a": list(range(257))}, False),
    ("args.a.all(x, x >= 0)", {"a": list(range(256))}, True),
    ("args.a.map(x, x * 2)", {"a": [1, 2]}, True),
    ("args.a.map(x, x > 1, x * 2)", {"a": [1, 2, 3]}, True),
    ("args.a.map(x, args.a.filter(y, y < x))", {"a": [1, 2, 3]}, True),
    ("glob(args.a, 'send_*')", {"a": "send_email"}, True),
    ("double(args.a) / 3.0", {"a": 1}, True),
    ("0x10 + -9223372036854775808 < 0", {}, True),
    ("007 == 7 && 1e3 == 1000.0 && .5 == 0.5 && -0.0 == 0.0", {}, True),
    ("1 - -1 + --1 + -(1) + 2 * -3", {}, True),
    ("[1, 2,][1] + {'a': 1,}.a", {}, True),
    ("1 < 2 == true && !!true", {}, True),
    ("args.__class__ + args[\"') or __import__('os') #\"]",
     {"__class__": "a", "') or __import__('os') #": "b"}, True),
    ("args.a.map(lambda, lambda + 1)", {"a": [1, 2]}, True),
    ("r'\\d' + '\\n\\t\\'\"'", {}, True),
]


@pytest.mark.parametrize(("source", "args", "answered"), PROBES, ids=[p[0] for p in PROBES])
def test_lowered_expression_agrees_with_the_runtime(
    source: str, args: dict[str, Any], answered: bool
) -> None:
    expected = runtime(source, {"args": args})
    kind, value = lowered(source, {"args": args})
    # Values the runtime takes in differently send every expression to it.
    natively = Bindings({"args": args}).native and kind == "value"
    if natively:
        assert expected[0] == "value" and same_json(value, expected[1]), (value, expected)
    assert natively == answered, f"answered {kind}; the runtime says {expected}"


@pytest.mark.parametrize("source", [
    "now > timestamp('2026-01-01T00:00:00Z')",
    "args.a == 1u",
    "b'x' == b'x'",
    "math.abs(args.a) > 1",
    "args.a.matches(args.p)",
    "args.a.matches('(?i)[a-z]')",
    "args.a.matches('(?i)info')",
    "args.a.matches('\\\\bword')",
    "args.a.matches('(?P<n>x)')",
    "'''long'''.size() > 0",
    "'\\x41' == 'A'",
    "args.map(args, args)",
])
def test_expressions_outside_the_subset_are_left_to_the_runtime(source: str) -> None:
    assert lower(source) is None


def test_values_nested_past_the_recursion_limit_are_left_to_the_runtime() -> None:
    deep: Any = "x"
    for _ in range(5000):
        deep = [deep]
    assert not Bindings({"args": {"a": deep}}).native


def test_a_fused_conjunction_is_lowered_with_its_parts() -> None:
    parts = tuple(compile_expression(text, "bool") for text in ("size(args.a) > 0", "// why\nargs.a != 'x'"))
    fused = conjunction(parts)
    assert fused is not None and fused.native is not None
    assert fused.evaluate(Bindings({"args": {"a": "y"}})) is True


# --- whole decisions ----------------------------------------------------------------------


@contextmanager
def _runtime_only() -> Iterator[None]:
    """Policies loaded while lowering is off, so every expression runs on the runtime."""
    compile_expression.cache_clear()
    conjunction.cache_clear()
    original = expressions.lower
    expressions.lower = lambda source: None  # type: ignore[assignment]
    try:
        yield
    finally:
        expressions.lower = original
        compile_expression.cache_clear()
        conjunction.cache_clear()


def _load_twice(load: Any) -> tuple[PolicySet, PolicySet]:
    lowered_set = load()
    with _runtime_only():
        return lowered_set, load()


def _variants(args: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """``args`` as is, then with each top-level value (and each first item) replaced by each spelling."""
    yield args
    for key, value in args.items():
        for spelling in SPELLINGS:
            yield {**args, key: spelling}
            if isinstance(value, list) and value:
                yield {**args, key: [spelling, *value[1:]]}
            if isinstance(value, dict) and value:
                first = next(iter(value))
                yield {**args, key: {**value, first: spelling}}


def _outcome(decision: Decision) -> tuple[object, ...]:
    return (decision.decision, canonical(decision.args), decision.violations, decision.mutations,
            decision.matched)


def _agree(lowered_set: PolicySet, runtime_set: PolicySet, call: ToolCall, **decide: Any) -> None:
    for args in _variants(call.args):
        varied = replace(call, args=args)
        want = _outcome(runtime_set.decide(varied, **decide))
        assert _outcome(lowered_set.decide(varied, **decide)) == want, json.dumps(args, default=str)


PACK_TESTS = sorted((ROOT / "policies" / "tests").glob("*.test.yaml"))


@pytest.mark.parametrize("path", PACK_TESTS, ids=[p.name for p in PACK_TESTS])
def test_pack_decisions_are_the_same_with_and_without_lowering(path: Path) -> None:
    entries, problems = read_documents([path], kinds=("PolicyTest",))
    assert not problems
    for doc, test in entries:
        assert isinstance(test, PolicyTest)
        lowered_set, runtime_set = _load_twice(lambda: policies_under_test(doc, test))  # noqa: B023
        for case in test.spec.cases:
            _agree(lowered_set, runtime_set, case_call(case), clock=clock_at(case.now))


EXAMPLE_CALLS = [
    (ROOT / "benchmarks" / "policies.yaml", "send_email",
     {"to": "ops@example.com", "subject": "Weekly report", "body": "All systems nominal.", "priority": 3}),
    (ROOT / "benchmarks" / "policies.yaml", "send_email",
     {"to": " Ops@Example.COM", "subject": "", "body": " my Password ", "priority": "9"}),
]


@pytest.mark.parametrize(("path", "tool", "args"), EXAMPLE_CALLS)
def test_benchmark_decisions_are_the_same_with_and_without_lowering(
    path: Path, tool: str, args: dict[str, Any]
) -> None:
    lowered_set, runtime_set = _load_twice(lambda: load_policy_set([path]))
    _agree(lowered_set, runtime_set, ToolCall(route="bench", tool=tool, args=args))


def test_the_benchmark_pack_decides_without_the_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every expression of a typical pack is lowered, so a passing call never converts
    its values for the runtime (the cost lowering exists to remove)."""
    policies = load_policy_set([ROOT / "benchmarks" / "policies.yaml"])

    def refuse(_: Bindings) -> None:
        raise AssertionError("the runtime was asked")

    monkeypatch.setattr(Bindings, "activation", property(refuse))
    args = {"to": " Ops@example.com", "subject": "Hi", "body": "fine ", "priority": 3}
    decision = policies.decide(ToolCall(route="bench", tool="send_email", args=args))
    assert decision.decision == "mutate"
    assert decision.args == {"to": "ops@example.com", "subject": "Hi", "body": "fine", "priority": 3}


# --- the passing path, laid out at load -----------------------------------------------------


def _clean_call(**context: Any) -> ToolCall:
    args = {"to": "ops@example.com", "subject": "Hi", "body": "fine", "priority": 3}
    return ToolCall(route="bench", tool="send_email", args=args, **context)


def test_a_call_every_policy_passes_unchanged_takes_the_planned_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from mcpfence.policy import engine

    policies = load_policy_set([ROOT / "benchmarks" / "policies.yaml"])

    def general_path(*_: Any) -> None:
        raise AssertionError("the general path was taken")

    monkeypatch.setattr(engine, "_CallState", general_path)
    decision = policies.decide(_clean_call())
    assert (decision.decision, decision.violations, decision.mutations) == ("allow", (), ())
    assert decision.matched == tuple(p.name for p in policies.policies)


def test_a_planned_call_the_argument_schema_refuses_is_denied_as_on_the_general_path() -> None:
    from mcpfence.policy.argschema import schema_check

    policies = load_policy_set([ROOT / "benchmarks" / "policies.yaml"])
    schema = {"type": "object", "properties": {"priority": {"type": "string"}}}
    planned = policies.decide(_clean_call(**schema_check(schema, "enforce")))
    with _runtime_only():
        general = load_policy_set([ROOT / "benchmarks" / "policies.yaml"])
        assert general.plan("bench", "send_email") is None
        expected = general.decide(_clean_call(**schema_check(schema, "enforce")))
    assert planned.decision == "deny"
    assert _outcome(planned) == _outcome(expected)


def test_policies_reading_more_than_the_arguments_have_no_planned_path(tmp_path: Path) -> None:
    path = tmp_path / "policies.yaml"
    path.write_text(
        "apiVersion: mcpfence/v1\nkind: ToolPolicy\nmetadata: {name: by-tool}\n"
        "spec:\n  match: {tools: [send]}\n  validations:\n    - expression: tool.name == 'send'\n"
    )
    policies = load_policy_set([path])
    assert policies.plan("mail", "send") is None
    assert policies.decide(ToolCall(route="mail", tool="send", args={})).decision == "allow"
