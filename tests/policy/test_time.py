"""``now`` comes from an injected clock: time-dependent policies decide the same way every run."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from mcpfence.policy import PolicySet
from mcpfence.policy.context import ROOTS, EvalContext, clock_at
from mcpfence.policy.expressions import environment, scan
from mcpfence.policy.models import PolicyTestCase
from mcpfence.policy.testing import run_case
from tests.policy.conftest import Loader
from tests.policy.helpers import call, policy

OFFICE_HOURS = policy(
    "office-hours",
    validations=[{
        "expression": "now.getHours() >= 9 && now.getHours() < 18",
        "message": "sends only between 09:00 and 18:00 UTC",
    }],
)
MORNING = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
NIGHT = datetime(2026, 1, 1, 23, 0, tzinfo=UTC)


@pytest.fixture
def policies(load: Loader) -> PolicySet:
    return load(OFFICE_HOURS)


def test_the_engine_reads_now_from_the_clock_it_is_given(policies: PolicySet) -> None:
    assert policies.decide(call({}), clock_at(MORNING)).decision == "allow"
    assert policies.decide(call({}), clock_at(NIGHT)).decision == "deny"


def test_the_clock_is_not_asked_when_no_policy_reads_now(load: Loader) -> None:
    asked: list[bool] = []

    def clock() -> datetime:
        asked.append(True)
        return MORNING

    load(policy("p", validations=[{"expression": "args.n < 5"}])).decide(call({"n": 1}), clock)

    assert asked == []


def test_without_a_moment_the_clock_is_the_wall_clock() -> None:
    before = datetime.now(UTC)

    assert before <= clock_at(None)() <= datetime.now(UTC)


def case(**fields: Any) -> PolicyTestCase:
    return PolicyTestCase.model_validate(
        {"name": "c", "tool": "send", "expect": {"decision": "allow"}, **fields}
    )


def test_a_policy_test_case_fixes_now_with_a_yaml_timestamp(policies: PolicySet) -> None:
    moment = yaml.safe_load("now: 2026-01-01T10:00:00Z")["now"]

    assert run_case(policies, case(now=moment)).passed
    assert not run_case(policies, case(now=NIGHT)).passed


def test_a_policy_test_case_accepts_now_as_a_quoted_iso_string(policies: PolicySet) -> None:
    assert run_case(policies, case(now="2026-01-01T10:00:00+00:00")).passed


def test_a_policy_test_case_refuses_a_time_without_a_zone() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        case(now=datetime(2026, 1, 1, 10, 0))


def test_every_declared_root_is_in_the_cel_environment_and_seen_by_the_scan() -> None:
    source = " && ".join(f"{name} == {name}" for name in ROOTS)

    environment().compile(source)  # raises on an undeclared variable
    assert scan(source).roots == ROOTS.keys()


def test_context_roots_are_made_from_the_call() -> None:
    context = EvalContext(
        call({}, tool="send", route="mail", session_id="s1", client_id="c1"), clock_at(MORNING)
    )

    assert context.bind(frozenset({"tool", "route", "session", "client", "now"}), {"a": 1}) == {
        "tool": {"name": "send", "annotations": {}, "inputSchema": {}},
        "route": {"name": "mail"},
        "session": {"id": "s1", "calls": []},
        "client": {"id": "c1"},
        "now": MORNING,
        "args": {"a": 1},
    }


def explain(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "hours.yaml").write_text(yaml.safe_dump(OFFICE_HOURS))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({
        "policies": ["hours.yaml"],
        "routes": [{"name": "mail", "path": "/mcp", "upstream": {"url": "http://127.0.0.1:9/mcp"}}],
    }))
    command = ["explain", "--config", "config.yaml", "--route", "mail", "--tool", "send", "--args", "{}"]
    return subprocess.run(
        [sys.executable, "-m", "mcpfence", *command, *extra],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )


@pytest.mark.slow
def test_explain_decides_at_the_time_given_with_now(tmp_path: Path) -> None:
    assert "decision: allow" in explain(tmp_path, "--now", "2026-01-01T10:00:00Z").stdout
    assert "decision: deny" in explain(tmp_path, "--now", "2026-01-01T23:00:00+00:00").stdout


def test_explain_refuses_a_now_without_a_zone(tmp_path: Path) -> None:
    run = explain(tmp_path, "--now", "2026-01-01T10:00:00")

    assert run.returncode == 2
    assert "has no zone" in run.stderr
