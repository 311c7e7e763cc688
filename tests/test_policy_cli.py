"""``mcpfence check``, ``test`` and ``explain`` run as the real command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.policy.helpers import DATA


def mcpfence(*args: str, cwd: Path = DATA) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcpfence", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_check_accepts_a_valid_policy_folder() -> None:
    run = mcpfence("check", "policies")

    assert run.returncode == 0
    assert run.stdout == "ok: 3 policies in 2 files\n"


def test_check_follows_a_config_file_to_its_policies() -> None:
    run = mcpfence("check", "config.yaml")

    assert run.returncode == 0
    assert run.stdout == "ok: 3 policies in 3 files\n"  # the config and its two policy files


def test_check_reports_errors_with_positions_and_exits_1() -> None:
    run = mcpfence("check", "broken")

    assert run.returncode == 1
    assert run.stdout.splitlines() == [
        "broken/bad.yaml:9:3: spec.colour: unknown key",
        "1 error in 1 file",
    ]


def test_check_reports_cel_type_errors(tmp_path: Path) -> None:
    text = (DATA / "broken" / "bad.yaml").read_text().replace("  colour: blue\n", "")
    (tmp_path / "typed.yaml").write_text(text)

    run = mcpfence("check", "typed.yaml", cwd=tmp_path)

    assert run.returncode == 1
    assert run.stdout.splitlines()[0] == (
        "typed.yaml:8:9: spec.when: expression must evaluate to bool, not STRING"
    )


def test_check_reports_a_policy_test_naming_a_missing_file(tmp_path: Path) -> None:
    text = (DATA / "policies" / "tests" / "mail_test.yaml").read_text()
    (tmp_path / "t.yaml").write_text(text.replace("../mail.yaml", "../nowhere.yaml"))

    run = mcpfence("check", "t.yaml", cwd=tmp_path)

    assert run.returncode == 1
    assert "nowhere.yaml:1:1: no such file or folder" in run.stdout


def test_test_prints_one_line_per_case_and_the_totals() -> None:
    run = mcpfence("test", "policies")

    assert run.returncode == 0
    assert run.stdout.splitlines() == [
        "PASS mixed-case emails are lowercased",
        "PASS a send without a stream is refused",
        "PASS a wide send is audited",
        "3 passed, 0 failed",
    ]


def test_test_explains_a_failing_case_and_exits_1() -> None:
    run = mcpfence("test", "failing")

    assert run.returncode == 1
    assert run.stdout.splitlines() == [
        "FAIL expects the wrong decision: expected decision deny, got allow",
        "PASS passes",
        "1 passed, 1 failed",
    ]


def test_explain_prints_policies_mutations_violations_and_the_decision() -> None:
    run = mcpfence(
        "explain", "--config", "config.yaml", "--route", "mail", "--tool", "add_suppression",
        "--args", '{"emails": ["A@B.C"]}',
    )

    assert run.returncode == 0
    assert run.stdout == (
        "route mail, tool add_suppression\n\n"
        "policies matched:\n  POLICY            RESULT\n  emails-lowercase  mutated\n\n"
        "mutations:\n  POLICY            PATH\n  emails-lowercase  /emails\n\n"
        "violations: none\n\n"
        "decision: mutate\n\n"
        'args: {"emails": ["a@b.c"]}\n'
    )


def test_explain_json_prints_one_object() -> None:
    run = mcpfence(
        "explain", "--config", "config.yaml", "--route", "mail", "--tool", "send_email",
        "--args", '{"To": "a@b.c"}', "--json",
    )

    assert json.loads(run.stdout) == {
        "decision": "deny",
        "args": {"To": "a@b.c"},
        "violations": [
            {
                "policy": "stream-required",
                "message": "name a MessageStream (outbound or broadcast)",
                "action": "enforce",
            }
        ],
        "mutations": [],
        "policies": ["stream-required", "many-recipients"],
    }


def test_explain_refuses_arguments_that_are_not_a_json_object() -> None:
    run = mcpfence(
        "explain", "--config", "config.yaml", "--route", "mail", "--tool", "x", "--args", "[1]"
    )

    assert run.returncode == 2
    assert "--args must be a JSON object" in run.stdout
