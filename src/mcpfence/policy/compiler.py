"""Turn validated :class:`ToolPolicy` documents into ready-to-run policies.

Everything that can be decided at load is decided here: CEL is compiled and
type-checked, pointers are split, regexes compiled, and the root variables each
policy reads are collected so evaluation binds only those.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from mcpfence.policy.context import POLICY_ROOTS
from mcpfence.policy.expressions import (
    CompiledExpression,
    ExpressionError,
    ResultKind,
    compile_expression,
)
from mcpfence.policy.models import ToolPolicy
from mcpfence.policy.native import representable
from mcpfence.policy.pointer import parse_pointer
from mcpfence.yamlsource import Diagnostic, Loc, YamlDocument


@dataclass(frozen=True)
class CompiledVariable:
    """A variable's checked expression; evaluated per call, in declaration order."""

    name: str
    expression: CompiledExpression


@dataclass(frozen=True)
class CompiledMutation:
    """A mutation with its pointer split at load; ``path`` is kept for reports."""

    path: str
    tokens: tuple[str, ...]
    expression: CompiledExpression


@dataclass(frozen=True)
class CompiledValidation:
    """A validation; its messages are only evaluated when it fails."""

    expression: CompiledExpression
    message: str | None
    message_expression: CompiledExpression | None


@dataclass(frozen=True)
class CompiledOpaque:
    """An opaque rule with its pointer split and its pattern compiled at load."""

    path: str
    tokens: tuple[str, ...]
    pattern: re.Pattern[str] | None


@dataclass(frozen=True)
class CompiledPolicy:
    """One policy, with its place in the evaluation order."""

    name: str
    order: int
    routes: tuple[str, ...]
    tools: tuple[str, ...]
    when: CompiledExpression | None
    params: dict[str, Any]
    variables: tuple[CompiledVariable, ...]
    mutations: tuple[CompiledMutation, ...]
    validations: tuple[CompiledValidation, ...]
    opaque: tuple[CompiledOpaque, ...]
    audit: bool
    fail_closed: bool
    guidance: str | None
    roots: frozenset[str]

    @cached_property
    def binds_own(self) -> bool:
        """Whether expressions read ``params`` or ``variables``: values of this policy alone."""
        return not self.roots.isdisjoint(POLICY_ROOTS)

    @cached_property
    def plain_params(self) -> bool:
        """Whether lowered expressions see ``params`` as the runtime does (YAML can hold
        integers past int64 or non-string keys)."""
        return representable(self.params)


class _Compiler:
    """Compiles the expressions of one document, collecting diagnostics with positions."""

    def __init__(self, doc: YamlDocument) -> None:
        self.doc = doc
        self.diagnostics: list[Diagnostic] = []
        self.roots: set[str] = set()
        self._lines: list[str] | None = None

    def expression(self, source: str, loc: Loc, result: ResultKind) -> CompiledExpression:
        try:
            compiled = compile_expression(source, result)
        except ExpressionError as exc:
            key = ".".join(str(part) for part in loc)
            line, col = self._position(loc, exc)
            self.diagnostics.append(Diagnostic(self.doc.file, line, col, f"{key}: {exc.message}"))
            return CompiledExpression(source, None, frozenset())
        self.roots |= compiled.roots
        return compiled

    def _position(self, loc: Loc, error: ExpressionError) -> tuple[int, int]:
        """Where in the file the error is: inside one-line and block scalars, exactly."""
        line, col = self.doc.position(loc)
        if self._lines is None:
            self._lines = Path(self.doc.file).read_text(encoding="utf-8").splitlines()
        if line > len(self._lines):
            return line, col
        start = self._lines[line - 1][col - 1 : col]
        if start in ("|", ">") and line + error.line <= len(self._lines):
            body = self._lines[line + error.line - 1]
            return line + error.line, len(body) - len(body.lstrip()) + error.col
        if error.line == 1:
            return line, col + (start in ("'", '"')) + error.col - 1
        return line, col

    def optional(self, source: str | None, loc: Loc, result: ResultKind) -> CompiledExpression | None:
        return None if source is None else self.expression(source, loc, result)


def compile_policy(
    doc: YamlDocument, policy: ToolPolicy, order: int
) -> tuple[CompiledPolicy, list[Diagnostic]]:
    """Compile ``policy``; the diagnostics list is empty when it is usable."""
    spec = policy.spec
    compiler = _Compiler(doc)
    when = compiler.optional(spec.when, ("spec", "when"), "bool")
    variables = tuple(
        CompiledVariable(
            v.name, compiler.expression(v.expression, ("spec", "variables", i, "expression"), "value")
        )
        for i, v in enumerate(spec.variables)
    )
    mutations = tuple(
        CompiledMutation(
            m.path,
            parse_pointer(m.path),
            compiler.expression(m.expression, ("spec", "mutations", i, "expression"), "any"),
        )
        for i, m in enumerate(spec.mutations)
    )
    validations = tuple(
        CompiledValidation(
            compiler.expression(v.expression, ("spec", "validations", i, "expression"), "bool"),
            v.message,
            compiler.optional(
                v.messageExpression, ("spec", "validations", i, "messageExpression"), "string"
            ),
        )
        for i, v in enumerate(spec.validations)
    )
    compiled = CompiledPolicy(
        name=policy.metadata.name,
        order=order,
        routes=tuple(spec.match.routes),
        tools=tuple(spec.match.tools),
        when=when,
        params=spec.params,
        variables=variables,
        mutations=mutations,
        validations=validations,
        opaque=tuple(
            CompiledOpaque(o.path, parse_pointer(o.path), re.compile(o.pattern) if o.pattern else None)
            for o in spec.opaque
        ),
        audit=spec.action == "audit",
        fail_closed=spec.failurePolicy == "Fail",
        guidance=spec.guidance,
        roots=frozenset(compiler.roots),
    )
    return compiled, compiler.diagnostics
