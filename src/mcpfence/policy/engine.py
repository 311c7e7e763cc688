"""Deciding one ``tools/call`` against the loaded policies.

The order is docs/reference/policies.md#how-a-call-is-decided.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any, NamedTuple

from mcpfence.jsonrpc import dumps
from mcpfence.policy.argschema import INPUT_SCHEMA_POLICY, InputSchema, SchemaMode, problems_of
from mcpfence.policy.compiler import CompiledPolicy, CompiledValidation
from mcpfence.policy.context import CONTEXT_ROOTS, Clock, EvalContext, system_clock
from mcpfence.policy.decision import Action, Decision, DecisionKind, Mutation, ToolCall, Violation
from mcpfence.policy.expressions import (
    Bindings,
    CompiledExpression,
    EvaluationError,
    conjunction,
    to_json,
)
from mcpfence.policy.native import Lowered, NotNative, representable
from mcpfence.policy.opaque import TokenMemory, as_memory
from mcpfence.policy.pointer import PointerError, get_at, is_missing, set_at

MAX_ARGS_BYTES = 256 * 1024
LIMITS_POLICY = "mcpfence/limits"  # not a valid policy name, so it never collides
_GLOB_CHARS = frozenset("*?[")


def same_json(a: object, b: object) -> bool:
    """Equality of JSON data that, unlike ``==``, tells ``1``, ``1.0`` and ``true`` apart."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[key], b[key]) for key in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(same_json, a, b))
    return a == b


def _copy(value: Any) -> Any:
    """Deep copy of JSON data (much cheaper than :func:`copy.deepcopy`)."""
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


class _CallState:
    """The arguments as mutated so far, and a version that changes with each write."""

    def __init__(self, call: ToolCall, clock: Clock) -> None:
        self.call = call
        self.args = call.args
        self.version = 0
        self._owned = False
        self._context = EvalContext(call, clock)
        self._tokens: TokenMemory | None = None
        self._shared: dict[frozenset[str], Bindings] = {}
        self._shared_version = 0
        self._plain_roots: dict[str, bool] = {}
        self._plain_args = (-1, False)

    def shared_bindings(self, roots: frozenset[str]) -> Bindings:
        """One set of bindings per set of roots and argument version, shared by the
        policies that bind nothing of their own (no params, no variables)."""
        if self._shared_version != self.version:
            self._shared, self._shared_version = {}, self.version
        bindings = self._shared.get(roots)
        if bindings is None:
            bindings = self._shared[roots] = Bindings(self.bind(roots), self.plain(roots))
        return bindings

    def plain(self, roots: frozenset[str]) -> bool:
        """Whether the call's values for ``roots`` reach the runtime as lowered expressions
        see them (checked once per root, and for the arguments once per version)."""
        version, plain = self._plain_args
        if version != self.version:
            plain = representable(self.args)
            self._plain_args = (self.version, plain)
        for name in roots & CONTEXT_ROOTS if plain else ():
            known = self._plain_roots.get(name)
            if known is None:
                known = self._plain_roots[name] = representable(self._context.value(name))
            plain = plain and known
        return plain

    def bind(self, roots: frozenset[str]) -> dict[str, object]:
        """The call's variables an expression set reads, with the arguments as they are now."""
        return self._context.bind(roots, self.args)

    def write(self, tokens: tuple[str, ...], value: Any) -> bool:
        """Set ``value`` at ``tokens``; whether anything changed."""
        before = get_at(self.args, tokens)
        if not is_missing(before) and same_json(before, value):
            return False
        if not self._owned:
            self.args, self._owned = _copy(self.args), True
        set_at(self.args, tokens, value)
        self.version += 1
        return True

    @property
    def tokens(self) -> TokenMemory:
        if self._tokens is None:
            self._tokens = as_memory(self.call.known_tokens)
        return self._tokens


class _Scope:
    """One policy evaluated within one call: binds only the variables it reads."""

    def __init__(self, policy: CompiledPolicy, state: _CallState) -> None:
        self.policy = policy
        self.state = state
        self._bindings: Bindings | None = None
        self._version = -1

    def evaluate(self, expression: CompiledExpression) -> Any:
        """Evaluate against the arguments as they are now, rebinding only after a write."""
        if self._bindings is None or self._version != self.state.version:
            self._bindings = (
                self.state.shared_bindings(self.policy.roots)
                if not self.policy.binds_own
                else self._own_bindings()
            )
            self._version = self.state.version
        return expression.evaluate(self._bindings)

    def _own_bindings(self) -> Bindings:
        """The call's values plus the policy's ``params`` and ``variables``; a variable that
        fails is left out, so only expressions that actually use it fail (under the
        policy's failurePolicy)."""
        roots = self.policy.roots
        plain = self.state.plain(roots) and self.policy.plain_params

        def value_of(expression: CompiledExpression, data: dict[str, object]) -> object:
            values = data["variables"]
            try:
                return expression.evaluate(Bindings(data, plain and representable(values)))
            except EvaluationError:
                raise _LeftOut from None

        data = _policy_data(self.policy, self.state.bind(roots), value_of)
        return Bindings(data, plain and representable(data.get("variables", {})))

    def violation(self, message: str, logged: str | None = None) -> Violation:
        return Violation(self.policy.name, message, "audit" if self.policy.audit else "enforce", logged)


class _LeftOut(Exception):
    """A variable that failed to evaluate: it is left out of ``variables``."""


def _policy_data(
    policy: CompiledPolicy,
    data: dict[str, object],
    value_of: Callable[[CompiledExpression, dict[str, object]], object],
) -> dict[str, object]:
    """``data`` plus ``policy``'s ``params`` and ``variables``, as far as it reads them. Each
    variable is evaluated by ``value_of`` with the ones before it bound (raising
    :class:`_LeftOut` leaves it out; anything else propagates)."""
    if "params" in policy.roots:
        data["params"] = policy.params
    if "variables" in policy.roots:
        values: dict[str, object] = {}
        data["variables"] = values
        for variable in policy.variables:
            try:
                values[variable.name] = value_of(variable.expression, data)
            except _LeftOut:
                continue
    return data


class SessionUse(NamedTuple):
    """What a route's policies read of the session's memory, so only that is kept (cluster mode)."""

    calls: bool
    """A policy reads ``session``: every forwarded call is recorded."""
    tokens: bool
    """A policy checks opaque tokens: tokens seen in results are remembered."""


class PolicySet:
    """An immutable, loaded set of policies; the proxy swaps whole sets on reload."""

    def __init__(self, policies: list[CompiledPolicy], revision: str) -> None:
        self.policies = tuple(sorted(policies, key=lambda p: p.order))
        self.revision = revision
        self._literal: dict[str, list[CompiledPolicy]] = {}
        self._globbed: list[CompiledPolicy] = []
        for policy in self.policies:
            if any(_GLOB_CHARS & set(tool) for tool in policy.tools):
                self._globbed.append(policy)
            else:
                for tool in dict.fromkeys(policy.tools):
                    self._literal.setdefault(tool, []).append(policy)
        self.candidates = lru_cache(maxsize=4096)(self._resolve)
        self.plan = lru_cache(maxsize=4096)(self._plan)
        rules = [rule for p in self.policies for rule in p.opaque]
        self.harvests_tokens = bool(rules)
        # Tokens to remember from results: those a rule's pattern describes, or, as soon
        # as one rule has no pattern (a token is whatever the tool accepts), any token-like string.
        patterns = tuple(dict.fromkeys(rule.pattern for rule in rules if rule.pattern))
        any_token = any(rule.pattern is None for rule in rules)
        self.token_patterns: tuple[re.Pattern[str], ...] | None = None if any_token else patterns
        self.session_use = lru_cache(maxsize=1024)(self._session_use)
        self.uses_session = lru_cache(maxsize=1024)(self._uses_session)

    def __len__(self) -> int:
        return len(self.policies)

    def _resolve(self, route: str, tool: str) -> tuple[CompiledPolicy, ...]:
        """Policies whose ``match`` holds, in order; cached per (route, tool)."""
        found = list(self._literal.get(tool, ()))
        found += [p for p in self._globbed if any(fnmatchcase(tool, g) for g in p.tools)]
        found.sort(key=lambda p: p.order)
        return tuple(p for p in found if any(fnmatchcase(route, g) for g in p.routes))

    def _plan(self, route: str, tool: str) -> _PassingPlan | None:
        """The passing path of the policies for (route, tool), laid out once (cached)."""
        return _PassingPlan.of(self.candidates(route, tool))

    def _session_use(self, route: str) -> SessionUse:
        """What the policies for ``route`` read of the session (cached per route)."""
        mine = [p for p in self.policies if any(fnmatchcase(route, g) for g in p.routes)]
        return SessionUse(any("session" in p.roots for p in mine), any(p.opaque for p in mine))

    def _uses_session(self, route: str) -> bool:
        """Whether a policy for ``route`` reads ``session`` or checks opaque tokens."""
        return any(self.session_use(route))

    def guidance(self, route: str, tool: str) -> list[str]:
        """Guidance of every policy matching the tool (``when`` is not known yet)."""
        return [p.guidance for p in self.candidates(route, tool) if p.guidance]

    def covers(self, route: str, tool: str) -> bool:
        """Whether a policy matches ``tool`` on ``route`` (else :meth:`unmatched` decides)."""
        return bool(self.candidates(route, tool))

    @staticmethod
    def unmatched(
        args: dict[str, Any], input_schema: InputSchema | None, schema_mode: SchemaMode
    ) -> Decision:
        """The decision for a call no policy matches: the argument schema's alone. The
        common case, kept cheap: callers need build no :class:`ToolCall` for it."""
        if schema_mode == "off" or (input_schema is not None and input_schema.conforms(args)):
            return Decision.allowed(args)
        checked: list[Violation] = []
        if not _check_schema(input_schema, schema_mode, args, checked):
            return Decision("audit" if checked else "allow", args, tuple(checked))
        return Decision("deny", args, tuple(checked))

    def decide(self, call: ToolCall, clock: Clock = system_clock) -> Decision:
        """All mutations first, then the argument schema, then validations and opaque
        checks, so every check judges what is forwarded. ``now`` is asked of ``clock``."""
        candidates = self.candidates(call.route, call.tool)
        if not candidates:
            return self.unmatched(call.args, call.input_schema, call.schema_mode)
        encoded = dumps(call.args)  # key order changes no length: the fast encoder will do
        if len(encoded) > MAX_ARGS_BYTES:
            message = f"arguments are {len(encoded)} bytes as JSON; the limit is {MAX_ARGS_BYTES}"
            return Decision("deny", call.args, (Violation(LIMITS_POLICY, message),))
        if encoded.find(b"\\u0000") >= 0 and _holds_nul(call.args):  # find: see jsonrpc.one_line
            # The CEL runtime reads strings only up to a NUL: what follows it would go unchecked.
            message = "arguments contain U+0000 (NUL), which policies cannot check"
            return Decision("deny", call.args, (Violation(LIMITS_POLICY, message),))
        plan = self.plan(call.route, call.tool)
        if plan is not None and plan.passes(call.args):
            checked: list[Violation] = []
            if call.schema_mode == "off" or not (
                _check_schema(call.input_schema, call.schema_mode, call.args, checked) or checked
            ):
                return Decision("allow", call.args, (), (), plan.matched)
        state = _CallState(call, clock)
        violations: list[Violation] = []
        mutations: list[Mutation] = []
        selected: list[_Scope] = []
        matched: list[str] = []
        for policy in candidates:
            scope = _Scope(policy, state)
            try:
                holds = policy.when is None or _as_bool(scope.evaluate(policy.when))
            except EvaluationError as exc:
                if policy.fail_closed:
                    matched.append(policy.name)
                    violations.append(scope.violation(f"the when condition failed: {exc}"))
                continue
            if holds:
                matched.append(policy.name)
                selected.append(scope)
                _mutate(scope, mutations, violations)
        refused = call.schema_mode != "off" and _check_schema(
            call.input_schema, call.schema_mode, state.args, violations
        )
        if refused:
            selected = []  # refused for its shape: rules written for the typed value would only add noise
        unsettled = _unsettled(selected, state)
        for scope in selected:
            if scope in unsettled:
                _validate(scope, violations)
            if scope.policy.opaque:
                _check_opaque(scope, violations)
        return Decision(
            _verdict(violations, mutations, call.args, state.args),
            state.args,
            tuple(violations),
            tuple(mutations),
            tuple(matched),
        )


_PLANNABLE_ROOTS = frozenset({"args", "params", "variables"})


class _PassingPlan:
    """The path a call takes when every policy for its tool holds and changes nothing,
    laid out at load: the lowered ``when``s, mutations, variables and fused validation
    groups, with the bindings they read. :meth:`passes` walks it without the general
    path's scopes and bookkeeping (about half the decision's cost) and answers True only
    when the general path would decide ``allow`` with every policy matched (the argument
    schema aside); anything else (a ``when`` not true, a mutation that would change the
    arguments, any evaluation the lowered form leaves to the runtime) answers False and
    the general path decides. Built only for policies that read nothing but ``args``,
    ``params`` and ``variables``, check no opaque tokens, and are lowered throughout."""

    def __init__(self, policies: tuple[CompiledPolicy, ...]) -> None:
        """Raise :class:`_NotPlannable` where a validation group is not lowered."""
        self.matched = tuple(p.name for p in policies)
        self.policies = policies
        # The groups the general path asks validations in (see _unsettled), all selected.
        shared = [v.expression for p in policies if not p.binds_own for v in p.validations]
        self.shared = _lowered_group(shared)
        self.own = [
            (p, group) for p in policies
            if p.binds_own and (group := _lowered_group([v.expression for v in p.validations]))
        ]

    @classmethod
    def of(cls, policies: tuple[CompiledPolicy, ...]) -> _PassingPlan | None:
        if not policies or not all(_plannable(p) for p in policies):
            return None
        try:
            return cls(policies)
        except _NotPlannable:
            return None

    def passes(self, args: dict[str, Any]) -> bool:
        if not representable(args):
            return False
        shared = {"args": args}
        own: dict[int, dict[str, object]] = {}  # by policy order
        try:
            for policy in self.policies:
                env = self._env(policy, args, own) if policy.binds_own else shared
                if policy.when is not None and _native(policy.when)(env) is not True:
                    return False
                for mutation in policy.mutations:
                    before = get_at(args, mutation.tokens)
                    after = to_json(_native(mutation.expression)(env))
                    if is_missing(before) or not same_json(before, after):
                        return False
            if self.shared is not None and self.shared(shared) is not True:
                return False
            return all(group(self._env(p, args, own)) is True for p, group in self.own)
        except (NotNative, EvaluationError):
            return False

    @staticmethod
    def _env(
        policy: CompiledPolicy, args: dict[str, Any], own: dict[int, dict[str, object]]
    ) -> dict[str, object]:
        """The bindings of a policy with ``params`` or ``variables``, as the general path
        makes them, except that a variable that fails ends the planned path."""
        env = own.get(policy.order)
        if env is None:
            env = own[policy.order] = _policy_data(policy, {"args": args}, _planned_value)
            if not representable(env.get("variables", {})):
                raise NotNative
        return env


def _planned_value(expression: CompiledExpression, env: dict[str, object]) -> object:
    return _native(expression)(env)


def _native(expression: CompiledExpression) -> Lowered:
    assert expression.native is not None  # checked when the plan was made
    return expression.native


def _plannable(policy: CompiledPolicy) -> bool:
    expressions = [
        *([policy.when] if policy.when is not None else []),
        *(m.expression for m in policy.mutations),
        *(v.expression for v in policy.variables),
    ]
    return (
        policy.roots <= _PLANNABLE_ROOTS
        and not policy.opaque
        and policy.plain_params
        and all(e.native is not None for e in expressions)
    )


def _lowered_group(expressions: list[CompiledExpression]) -> Lowered | None:
    """One lowered function that is true exactly when every expression is (None for none)."""
    if not expressions:
        return None
    joined = expressions[0] if len(expressions) == 1 else conjunction(tuple(expressions))
    if joined is None or joined.native is None:
        raise _NotPlannable
    return joined.native


class _NotPlannable(Exception):
    """A validation group the lowered form cannot answer: no plan."""


def _unsettled(scopes: list[_Scope], state: _CallState) -> list[_Scope]:
    """The scopes whose validations need evaluating one by one: those not all ``true``.

    Policies that bind nothing of their own (no ``params``, no ``variables``) are asked
    together in one program; the others each in one program of their own.
    """
    shared = [s for s in scopes if s.policy.validations and not s.policy.binds_own]
    own = [s for s in scopes if s.policy.validations and s.policy.binds_own]
    unsettled = [] if _all_true(shared, state) else shared
    return unsettled + [s for s in own if not _all_true([s], state)]


def _all_true(scopes: list[_Scope], state: _CallState) -> bool:
    """Whether every validation of ``scopes`` holds, asked in one evaluation (False if unsure)."""
    expressions = tuple(v.expression for s in scopes for v in s.policy.validations)
    if len(expressions) == 1:
        return False  # one expression is asked as cheaply on its own
    fused = conjunction(expressions)
    if fused is None:
        return False
    scope = scopes[0] if len(scopes) == 1 else None
    try:
        if scope is not None:
            return scope.evaluate(fused) is True
        return fused.evaluate(state.shared_bindings(fused.roots)) is True
    except EvaluationError:
        return False


def _check_schema(
    input_schema: InputSchema | None,
    schema_mode: SchemaMode,
    args: dict[str, Any],
    violations: list[Violation],
) -> bool:
    """The built-in ``mcpfence-input-schema`` check; whether it denies the call."""
    problems = problems_of(input_schema, args)
    if not problems:
        return False
    action: Action = "audit" if schema_mode == "audit" else "enforce"
    violations.extend(Violation(INPUT_SCHEMA_POLICY, p.message, action, p.logged) for p in problems)
    return action == "enforce"


def _holds_nul(value: Any) -> bool:
    """Whether a string (or object key) anywhere in ``value`` contains U+0000."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in key or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(map(_holds_nul, value))
    return False


def _as_bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise EvaluationError("result is not a bool")
    return value


def _verdict(
    violations: list[Violation], mutations: list[Mutation], before: object, after: object
) -> DecisionKind:
    if any(v.action == "enforce" for v in violations):
        return "deny"
    if violations:
        return "audit"
    if mutations and not same_json(before, after):
        return "mutate"
    return "allow"


def _mutate(scope: _Scope, mutations: list[Mutation], violations: list[Violation]) -> None:
    for mutation in scope.policy.mutations:
        try:
            value = to_json(scope.evaluate(mutation.expression))
            if scope.state.write(mutation.tokens, value):
                mutations.append(Mutation(scope.policy.name, mutation.path))
        except (EvaluationError, PointerError) as exc:
            if scope.policy.fail_closed:
                violations.append(scope.violation(f"mutation {mutation.path} failed: {exc}"))


def _validate(scope: _Scope, violations: list[Violation]) -> None:
    for number, validation in enumerate(scope.policy.validations, start=1):
        try:
            if _as_bool(scope.evaluate(validation.expression)):
                continue
        except EvaluationError as exc:
            if scope.policy.fail_closed:
                violations.append(scope.violation(f"validation {number} failed to evaluate: {exc}"))
            continue
        violations.append(scope.violation(_message(scope, validation)))


def _message(scope: _Scope, validation: CompiledValidation) -> str:
    """``messageExpression``, else ``message``, else the rule itself."""
    if validation.message_expression is not None:
        try:
            text = scope.evaluate(validation.message_expression)
            if isinstance(text, str) and text:
                return text
        except EvaluationError:
            pass
    return validation.message or f"policy {scope.policy.name} requires {validation.expression.source}"


def _check_opaque(scope: _Scope, violations: list[Violation]) -> None:
    for rule in scope.policy.opaque:
        value = get_at(scope.state.args, rule.tokens)
        if is_missing(value):
            continue
        if not isinstance(value, str):
            violations.append(scope.violation(f"{rule.path} must be an opaque token string"))
            continue
        # An edited copy of a known token is the more useful diagnosis: it quotes the original.
        original = scope.state.tokens.original_of(value) if scope.state.call.known_tokens else None
        if original is not None:
            altered = f"{rule.path} was altered; pass the token exactly as returned earlier"
            violations.append(scope.violation(f"{altered}: {original}", logged=altered))
        elif rule.pattern is not None and not rule.pattern.search(value):
            violations.append(scope.violation(
                f"{rule.path} is not a well-formed token; pass it exactly as the tool returned it"
            ))

