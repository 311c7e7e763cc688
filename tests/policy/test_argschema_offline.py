"""The argument check without an upstream: ``mcpfence explain`` and PolicyTest cases."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.policy.helpers import DATA
from tests.test_policy_cli import mcpfence

SCHEMA = json.dumps({"type": "object", "properties": {"To": {"type": "string"}}, "required": ["To"]})


def explain(args: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """``mcpfence explain`` of tool ``archive`` on the test config's ``mail`` route."""
    return mcpfence(
        "explain", "--config", "config.yaml", "--route", "mail", "--tool", "archive", "--args", args, *extra
    )


def test_explain_checks_the_arguments_against_a_given_schema() -> None:
    run = explain('{"To": 5}', "--input-schema", SCHEMA, "--json")
    message = "/To must be a string, got the integer 5"
    assert json.loads(run.stdout)["violations"] == [
        {"policy": "mcpfence-input-schema", "message": message, "action": "enforce"}
    ]


def test_explain_without_a_schema_leaves_the_check_out() -> None:
    run = explain('{"To": 5}', "--json")
    assert json.loads(run.stdout)["decision"] == "allow"


def test_explain_refuses_a_schema_that_is_not_a_json_object() -> None:
    run = explain("{}", "--input-schema", "[]")
    assert run.returncode == 2
    assert "--input-schema must be a JSON object" in run.stdout


def test_a_policy_test_case_can_supply_the_tools_input_schema(tmp_path: Path) -> None:
    (tmp_path / "schema_test.yaml").write_text(f"""\
apiVersion: mcpfence/v1
kind: PolicyTest
metadata: {{name: schema-cases}}
spec:
  policies: [{DATA / "policies" / "mail.yaml"}]
  cases:
    - name: a number for a string is refused
      tool: archive
      args: {{To: 5}}
      inputSchema: {SCHEMA}
      expect:
        decision: deny
        violations: [mcpfence-input-schema]
        messages: ["/To must be a string, got the integer 5"]
""")
    run = mcpfence("test", str(tmp_path))
    assert run.stdout.splitlines() == ["PASS a number for a string is refused", "1 passed, 0 failed"]
