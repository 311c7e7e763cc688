"""Micro-benchmarks of the policy engine (targets in benchmarks/README.md; numbers, not tests).

Run: ``.venv/bin/python benchmarks/bench_policy.py``. Prints one table:
deciding a call against 5 matching policies of 3 expressions each (target
<= 100 us), the cost 1,000 loaded policies for other tools add to a call
(target <= 10 us), one expression lowered to Python (mcpfence.policy.native), the
same on the C++ runtime (cel_expr_python) and on the pure-Python cel-python (celpy),
and the opaque-token check of a value
never seen against a session that remembers 1,000 tokens (its worst case).
"""

from __future__ import annotations

import secrets
import tempfile
import timeit
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from mcpfence.policy import PolicySet, TokenMemory, ToolCall, load_policy_set
from mcpfence.policy.expressions import Bindings, compile_expression

EXPRESSION = "args.emails.all(e, e.contains('@')) && args.list_id.startsWith('l')"
ARGS = {"list_id": "l1", "emails": ["John.Doe@Example.com", "ann@example.org"]}
CALL = ToolCall(route="ipost", tool="create_contact", args=ARGS, session_id="s1")


def policy(name: str, tool: str) -> dict[str, Any]:
    """A policy with three expressions: when, one mutation, one validation."""
    return {
        "apiVersion": "mcpfence/v1",
        "kind": "ToolPolicy",
        "metadata": {"name": name},
        "spec": {
            "match": {"tools": [tool]},
            "when": "has(args.emails)",
            "mutations": [{"path": "/emails", "expression": "args.emails.map(e, e.lowerAscii())"}],
            "validations": [{"expression": "args.emails.all(e, e.contains('@'))"}],
        },
    }


def load(documents: list[dict[str, Any]]) -> PolicySet:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "policies.yaml"
        path.write_text(yaml.safe_dump_all(documents))
        return load_policy_set([path])


def per_call_us(function: Callable[[], object], number: int = 2000) -> float:
    """Best of five runs, in microseconds per call."""
    return min(timeit.repeat(function, number=number, repeat=5)) / number * 1e6


def others(count: int) -> list[dict[str, Any]]:
    """Policies for other tools: mostly literal names, a tenth globs (as real packs mix)."""
    return [
        policy(f"other-{i}", f"tool_{i}_*" if i % 10 == 0 else f"tool_{i}") for i in range(count)
    ]


def celpy_us() -> float:
    import celpy
    from celpy.adapter import json_to_cel  # where it is defined; ``celpy`` only re-imports it

    env = celpy.Environment()
    program = env.program(env.compile(EXPRESSION))
    activation = {"args": json_to_cel(ARGS)}
    return per_call_us(lambda: program.evaluate(activation), number=200)


def opaque_us() -> float:
    """Deciding a call whose opaque argument is new, with 1,000 88-character tokens known."""
    rule = {"apiVersion": "mcpfence/v1", "kind": "ToolPolicy", "metadata": {"name": "blob"},
            "spec": {"match": {"tools": ["get_blob"]}, "opaque": [{"path": "/id"}]}}
    memory = TokenMemory(secrets.token_urlsafe(66) for _ in range(1000))
    call = ToolCall(route="ipost", tool="get_blob", args={"id": secrets.token_urlsafe(66)},
                    session_id="s1", known_tokens=memory)
    policies = load([rule])
    return per_call_us(lambda: policies.decide(call))


def added_us(with_others: PolicySet, without: PolicySet) -> float:
    """Extra cost per call of the larger set, measured interleaved to cancel out noise."""
    pairs = [
        (per_call_us(lambda: with_others.decide(CALL)), per_call_us(lambda: without.decide(CALL)))
        for _ in range(3)
    ]
    return min(a for a, _ in pairs) - min(b for _, b in pairs)


def main() -> None:
    matching = [policy(f"match-{i}", "create_contact") for i in range(5)]
    five = load(matching)
    one = load(matching[:1])
    one_among_many = load(matching[:1] + others(1000))
    expression = compile_expression(EXPRESSION, "bool")
    on_runtime = replace(expression, native=None)
    bindings = Bindings({"args": ARGS})
    assert bindings.activation is not None  # converted once, outside the timing

    rows = [
        ("decide: 5 matching policies x 3 expressions", per_call_us(lambda: five.decide(CALL)), 100),
        ("added by 1,000 loaded policies for other tools", added_us(one_among_many, one), 10),
        ("one expression, lowered to Python", per_call_us(lambda: expression.evaluate(bindings)), None),
        ("one expression, cel_expr_python (C++)", per_call_us(lambda: on_runtime.evaluate(bindings)), None),
        ("one expression, cel-python (celpy)", celpy_us(), None),
        ("opaque check: new token, 1,000 known", opaque_us(), None),
    ]
    width = max(len(name) for name, _, _ in rows)
    print(f"{'benchmark'.ljust(width)}  {'us/call':>9}  target")
    for name, value, target in rows:
        goal = f"<= {target} us" if target is not None else ""
        print(f"{name.ljust(width)}  {value:9.1f}  {goal}")


if __name__ == "__main__":
    main()
