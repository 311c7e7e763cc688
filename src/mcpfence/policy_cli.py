"""``mcpfence check``, ``test`` and ``explain``: exit codes and output.

See docs/reference/policies.md#the-command-line.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from mcpfence.config import load_config
from mcpfence.policy.argschema import SchemaMode, schema_check
from mcpfence.policy.context import clock_at
from mcpfence.policy.decision import Decision, ToolCall
from mcpfence.policy.loader import load_policy_set, policy_files, read_documents
from mcpfence.policy.models import PolicyTest
from mcpfence.policy.testing import policies_under_test, run_case
from mcpfence.yamlsource import Diagnostic, SourceError, load_yaml_documents

_CONFIG_KEYS = frozenset({"server", "routes", "policies"})


def _is_config(path: Path) -> bool:
    """A config file is one YAML mapping without ``kind`` and with config keys."""
    if not path.is_file():
        return False
    try:
        documents = load_yaml_documents(path)
    except SourceError:
        return False
    if len(documents) != 1 or not isinstance(documents[0].data, dict):
        return False
    data = documents[0].data
    return "kind" not in data and bool(_CONFIG_KEYS & data.keys())


def _collect(problems: list[Diagnostic], found: Iterable[Diagnostic]) -> None:
    """Add each of ``found`` once: the policy and test passes read the same files and report alike."""
    problems.extend(d for d in found if d not in problems)


def check(paths: list[Path], out: TextIO | None = None) -> int:
    """Validate configs, policy and test files; print every problem, then a summary."""
    out = out or sys.stdout
    problems: list[Diagnostic] = []
    sources: list[Path] = []
    configs = 0
    for path in paths:
        if not _is_config(path):
            sources.append(path)
            continue
        configs += 1
        try:
            sources += load_config(path).policy_paths
        except SourceError as error:
            _collect(problems, error.diagnostics)
    files, _ = policy_files(sources)
    count = 0
    try:
        count = len(load_policy_set(sources))
    except SourceError as error:
        _collect(problems, error.diagnostics)
    entries, test_problems = read_documents(sources, kinds=("PolicyTest",))
    _collect(problems, test_problems)
    for doc, test in entries:
        try:
            assert isinstance(test, PolicyTest)
            policies_under_test(doc, test)
        except SourceError as error:
            _collect(problems, error.diagnostics)
    for problem in problems:
        print(problem, file=out)
    where = _count(len(files) + configs, "file", "files")
    if problems:
        print(f"{_count(len(problems), 'error', 'errors')} in {where}", file=out)
        return 1
    print(f"ok: {_count(count, 'policy', 'policies')} in {where}", file=out)
    return 0


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


def test(paths: list[Path], out: TextIO) -> int:
    """Run every PolicyTest case under ``paths``; one line per case, then the totals."""
    entries, problems = read_documents(paths, kinds=("PolicyTest",))
    for problem in problems:
        print(problem, file=out)
    passed = failed = 0
    for doc, test_doc in entries:
        assert isinstance(test_doc, PolicyTest)
        try:
            policies = policies_under_test(doc, test_doc)
        except SourceError as error:
            print(error, file=out)
            for case in test_doc.spec.cases:
                print(f"FAIL {case.name}: the policies under test did not load", file=out)
            failed += len(test_doc.spec.cases)
            continue
        for case in test_doc.spec.cases:
            result = run_case(policies, case)
            print(result, file=out)
            passed += result.passed
            failed += not result.passed
    if not entries:
        print("no PolicyTest documents found", file=out)
    print(f"{passed} passed, {failed} failed", file=out)
    return 0 if entries and not failed and not problems else 1


def _json_object(text: str | None) -> dict[str, Any] | None:
    try:
        value = json.loads(text) if text is not None else None
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def explain(
    config_path: Path,
    route: str,
    tool: str,
    args_json: str,
    as_json: bool,
    out: TextIO,
    input_schema_json: str | None = None,
    now: datetime | None = None,
) -> int:
    """Decide one call with the config's policies, without forwarding it.

    With ``input_schema_json`` (the tool's inputSchema) the built-in argument check
    runs too, in the route's ``input_schema`` mode (``enforce`` for an unknown route).
    ``now`` fixes the time policies read (default: the wall clock).
    """
    args = _json_object(args_json)
    if args is None:
        print("error: --args must be a JSON object, for example '{\"id\": \"1\"}'", file=out)
        return 2
    schema = _json_object(input_schema_json)
    if input_schema_json is not None and schema is None:
        print("error: --input-schema must be a JSON object (the tool's inputSchema)", file=out)
        return 2
    config = load_config(config_path)
    policies = load_policy_set(config.policy_paths)
    mode: SchemaMode = next((r.input_schema for r in config.routes if r.name == route), "enforce")
    call = ToolCall(route=route, tool=tool, args=args, **schema_check(schema, mode))
    decision = policies.decide(call, clock_at(now))
    if as_json:
        print(json.dumps(decision.as_dict(), indent=2), file=out)
    else:
        out.write(_table(route, tool, decision))
    return 0


def _table(route: str, tool: str, decision: Decision) -> str:
    mutations = [(m.policy, m.path) for m in decision.mutations]
    violations = [(v.policy, v.action, v.message) for v in decision.violations]
    sections = [
        f"route {route}, tool {tool}",
        _section("policies matched", ("POLICY", "RESULT"), [
            (name, policy_verdict(name, decision)) for name in decision.matched
        ]),
        _section("mutations", ("POLICY", "PATH"), mutations),
        _section("violations", ("POLICY", "ACTION", "MESSAGE"), violations),
        f"decision: {decision.decision}",
        f"args: {json.dumps(decision.args, ensure_ascii=False)}",
    ]
    return "\n\n".join(sections) + "\n"


def policy_verdict(policy: str, decision: Decision) -> str:
    """What one matched policy did to the call: violated, mutated or passed."""
    if any(v.policy == policy for v in decision.violations):
        return "violated"
    return "mutated" if any(m.policy == policy for m in decision.mutations) else "passed"


def _section(title: str, header: tuple[str, ...], rows: Iterable[tuple[object, ...]]) -> str:
    rows = [header, *rows]
    if len(rows) == 1:
        return f"{title}: none"
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    return f"{title}:\n" + "\n".join(f"  {line}" for line in lines)
