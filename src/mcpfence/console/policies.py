"""The policies page: each loaded policy in plain words, with the test cases that exercise it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcpfence.policy import PolicySet
from mcpfence.policy.loader import read_documents
from mcpfence.policy.models import PolicyTest, ToolPolicy
from mcpfence.policy.testing import decide_case, policies_under_test, run_case
from mcpfence.yamlsource import SourceError, YamlDocument


@dataclass(frozen=True)
class CaseView:
    test: str  # file:line of the PolicyTest document
    name: str
    passed: bool
    failures: tuple[str, ...]


@dataclass
class PolicyView:
    name: str
    where: str
    description: str
    labels: dict[str, str]
    routes: list[str]
    tools: list[str]
    action: str
    rules: list[str]
    cases: list[CaseView] = field(default_factory=list)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def plain_words(policy: ToolPolicy) -> list[str]:
    """The policy's rules as sentences a reviewer can check against the YAML."""
    spec = policy.spec
    rules = []
    if spec.when:
        rules.append(f"Applies only when {spec.when.strip()}.")
    if spec.params:
        rules.append(f"Parameters: {_json(spec.params)}.")
    rules += [f"Computes {v.name} as {v.expression.strip()}." for v in spec.variables]
    rules += [f"Sets {m.path} to {m.expression.strip()}." for m in spec.mutations]
    for rule in spec.validations:
        said = rule.message or (rule.messageExpression and f"the value of {rule.messageExpression.strip()}")
        rules.append(f"Requires {rule.expression.strip()}" + (f"; otherwise says: {said}" if said else "."))
    for opaque in spec.opaque:
        shape = f", shaped like /{opaque.pattern}/" if opaque.pattern else ""
        rules.append(f"{opaque.path} must be a token passed back exactly as a tool returned it{shape}.")
    verb = "denies the call" if spec.action == "enforce" else "only records it (audit)"
    failing = "fails closed" if spec.failurePolicy == "Fail" else "is skipped (failurePolicy Ignore)"
    rules.append(f"A broken rule {verb}; if a rule cannot be evaluated the policy {failing}.")
    if spec.guidance:
        rules.append(f"Tells the model in the tool description: {spec.guidance.strip()}")
    return rules


def policy_views(paths: Sequence[Path], loaded: PolicySet) -> tuple[list[PolicyView], list[str]]:
    """A view per loaded policy (in evaluation order) and the problems met reading the files."""
    entries, problems = read_documents(paths)
    documents = {m.metadata.name: (d, m) for d, m in entries if isinstance(m, ToolPolicy)}
    views: dict[str, PolicyView] = {}
    for compiled in loaded.policies:
        found = documents.get(compiled.name)
        if found is None:
            action = "audit" if compiled.audit else "enforce"
            gone = "loaded, but no longer in the files on disk (the next reload drops it)"
            views[compiled.name] = PolicyView(
                compiled.name, "", gone, {}, list(compiled.routes), list(compiled.tools), action, []
            )
            continue
        doc, model = found
        views[compiled.name] = PolicyView(
            name=compiled.name,
            where=f"{doc.file}:{doc.line}",
            description=model.metadata.description,
            labels=model.metadata.labels,
            routes=model.spec.match.routes,
            tools=model.spec.match.tools,
            action=model.spec.action,
            rules=plain_words(model),
        )
    for doc, test in entries:
        if isinstance(test, PolicyTest):
            try:
                _attach_cases(doc, test, views)
            except SourceError as error:
                problems += error.diagnostics
    return list(views.values()), [str(p) for p in problems]


def _attach_cases(doc: YamlDocument, test: PolicyTest, views: dict[str, PolicyView]) -> None:
    """Run the test's cases; list each under every policy its decision involved."""
    policies = policies_under_test(doc, test)
    where = f"{doc.file}:{doc.line}"
    for case in test.spec.cases:
        result = run_case(policies, case)
        view = CaseView(where, case.name, result.passed, result.failures)
        for name in decide_case(policies, case).matched:
            if name in views:
                views[name].cases.append(view)
