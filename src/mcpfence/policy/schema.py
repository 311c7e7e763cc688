"""The JSON Schema of policy files, generated from the models.

Committed as ``policies/schema.json`` so editors validate and complete policy
files; a test keeps the committed copy equal to this output. Regenerate with
``python -m mcpfence.policy.schema > policies/schema.json``.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import TypeAdapter

from mcpfence.policy.models import PolicyDocument

SCHEMA_ID = "https://mcpfence.dev/schemas/policy-v1.json"


def policy_schema() -> dict[str, Any]:
    """The models' schema with the ``$schema``/``$id`` header editors need to pick it up."""
    schema = TypeAdapter(PolicyDocument).json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "mcpfence policy file (ToolPolicy or PolicyTest)",
        **schema,
    }


def render() -> str:
    """The schema as committed: sorted keys, so regenerating gives a stable diff."""
    return json.dumps(policy_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(render(), end="")
