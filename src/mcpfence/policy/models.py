"""The documents of a policy file (SPEC §3, §5) as strict pydantic models.

Field names are SPEC's, so they are camelCase where the SPEC says so. Syntax of
globs, JSON Pointers and regexes is checked here; CEL is compiled by the loader,
which knows the positions to report.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from mcpfence.policy.decision import Action, DecisionKind
from mcpfence.policy.pointer import parse_pointer

NAME_PATTERN = r"^[a-z0-9-]+$"


def _check_glob(pattern: str) -> str:
    """Reject globs fnmatch would silently read as literals (empty, unclosed ``[``)."""
    if not pattern:
        raise ValueError("glob must not be empty")
    if pattern.rfind("[") > pattern.rfind("]"):
        raise ValueError(f"glob {pattern!r} has an unclosed '['")
    return pattern


def _check_pointer(pointer: str) -> str:
    parse_pointer(pointer)
    if pointer == "":
        raise ValueError("JSON Pointer must name a member of the arguments, not the whole object")
    return pointer


def _check_regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None
    return pattern


Glob = Annotated[str, AfterValidator(_check_glob)]
Pointer = Annotated[str, AfterValidator(_check_pointer)]
Regex = Annotated[str, AfterValidator(_check_regex)]
Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=253)]
Expression = Annotated[str, Field(min_length=1, description="A CEL expression.")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Metadata(_Strict):
    """Identifies a document; ``name`` is unique across all loaded policy files."""

    name: Name
    description: str = ""
    labels: dict[str, str] = Field(default_factory=dict)


class Match(_Strict):
    """Which calls a policy applies to: globs over route names and tool names."""

    routes: list[Glob] = Field(default_factory=lambda: ["*"], min_length=1)
    tools: list[Glob] = Field(min_length=1)


class Variable(_Strict):
    """A named CEL value, visible to later expressions as ``variables.NAME``."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    expression: Expression


class MutationRule(_Strict):
    """Sets the value at a JSON Pointer in the arguments to a CEL result."""

    path: Pointer
    expression: Expression


class ValidationRule(_Strict):
    """A CEL condition the final arguments must satisfy."""

    expression: Expression
    message: str | None = None
    messageExpression: Expression | None = None


class OpaqueRule(_Strict):
    """An argument carrying a token the model must pass back verbatim."""

    path: Pointer
    pattern: Regex | None = None


class ToolPolicySpec(_Strict):
    """What a ToolPolicy checks and rewrites."""

    match: Match
    when: Expression | None = Field(None, description="CEL precondition; the policy applies when true.")
    params: dict[str, Any] = Field(default_factory=dict)
    variables: list[Variable] = Field(default_factory=list)
    mutations: list[MutationRule] = Field(default_factory=list)
    validations: list[ValidationRule] = Field(default_factory=list)
    opaque: list[OpaqueRule] = Field(default_factory=list)
    action: Action = "enforce"
    failurePolicy: Literal["Fail", "Ignore"] = "Fail"
    guidance: str | None = Field(None, description="Appended to the tool's description in tools/list.")

    @model_validator(mode="after")
    def _unique_variables(self) -> ToolPolicySpec:
        names = [variable.name for variable in self.variables]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"variable names must be unique: {', '.join(duplicates)}")
        return self


class ToolPolicy(_Strict):
    """A policy applied to every matching tools/call."""

    apiVersion: Literal["mcpfence/v1"]
    kind: Literal["ToolPolicy"]
    metadata: Metadata
    spec: ToolPolicySpec


class CaseSession(_Strict):
    id: str = ""
    calls: list[dict[str, Any]] = Field(default_factory=list)


class CaseClient(_Strict):
    id: str = ""


class Expectation(_Strict):
    """What a test case expects; only the fields given are compared."""

    decision: DecisionKind | None = None
    args: dict[str, Any] | None = None
    violations: list[str] | None = None
    messages: list[str] | None = None

    @model_validator(mode="after")
    def _expects_something(self) -> Expectation:
        if self == Expectation.model_construct():
            raise ValueError("expect needs at least one of decision, args, violations, messages")
        return self


class PolicyTestCase(_Strict):
    """One call to decide, and what the decision must be."""

    name: str = Field(min_length=1)
    route: str = "default"
    tool: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)
    annotations: dict[str, Any] = Field(default_factory=dict)
    session: CaseSession = CaseSession()
    client: CaseClient = CaseClient()
    known_tokens: list[str] = Field(default_factory=list)
    # The tool's inputSchema: when given, the built-in argument check runs (enforce).
    inputSchema: dict[str, Any] | None = None
    expect: Expectation


class PolicyTestSpec(_Strict):
    policies: list[str] = Field(min_length=1)
    cases: list[PolicyTestCase] = Field(min_length=1)


class PolicyTest(_Strict):
    """Test cases run by ``mcpfence test`` against the policy files they name."""

    apiVersion: Literal["mcpfence/v1"]
    kind: Literal["PolicyTest"]
    metadata: Metadata
    spec: PolicyTestSpec


PolicyDocument = Annotated[ToolPolicy | PolicyTest, Field(discriminator="kind")]
