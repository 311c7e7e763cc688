"""The committed JSON Schema for policy files matches the models and accepts real files."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from mcpfence.policy.schema import render
from tests.policy.helpers import DATA

COMMITTED = Path(__file__).parents[2] / "policies" / "schema.json"


def test_the_committed_schema_is_the_generated_one() -> None:
    # Regenerate with: python -m mcpfence.policy.schema > policies/schema.json
    assert COMMITTED.read_text() == render()


def test_the_schema_accepts_policies_and_policy_tests() -> None:
    schema = json.loads(COMMITTED.read_text())
    files = [DATA / "policies" / "mail.yaml", DATA / "policies" / "tests" / "mail_test.yaml"]

    for document in (doc for file in files for doc in yaml.safe_load_all(file.read_text())):
        jsonschema.validate(document, schema)


def test_the_schema_rejects_unknown_fields() -> None:
    schema = json.loads(COMMITTED.read_text())
    document = yaml.safe_load((DATA / "broken" / "bad.yaml").read_text())

    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(document))

    # The document fails the union; the ToolPolicy branch names the unknown key.
    reasons = [branch.message for error in errors for branch in error.context]
    assert "Additional properties are not allowed ('colour' was unexpected)" in reasons
