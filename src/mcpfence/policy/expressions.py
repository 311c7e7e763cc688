"""CEL for policies: one shared environment, compile-time limits, typed results.

Expressions run on the official C++ runtime (``cel_expr_python``). They are
compiled and type-checked once at load, so a typo stops the policy from loading
instead of failing every call. The runtime reports evaluation errors as values
of type ERROR, not exceptions; :meth:`CompiledExpression.evaluate` turns them
into :class:`EvaluationError` with a short category that never quotes argument
values (denial messages go back to the model and into logs).
"""

from __future__ import annotations

import datetime
import math
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cache, lru_cache
from typing import Any, Literal

from cel_expr_python import cel
from cel_expr_python.ext import ext_encoders, ext_math, ext_optional, ext_strings

from mcpfence.policy.context import ROOTS
from mcpfence.policy.native import Lowered, NotNative, lower, representable

MAX_EXPRESSION_LENGTH = 4096
MAX_COMPREHENSION_DEPTH = 2

ResultKind = Literal["bool", "string", "value", "any"]

_COMPREHENSIONS = frozenset(
    {"all", "exists", "exists_one", "existsOne", "map", "filter", "sortBy",
     "transformList", "transformMap", "transformMapEntry"}
)
_TOKEN = re.compile(
    r"""(?P<string>[rRbB]{0,2}(?P<q>'''|\"\"\"|'|")(?:\\.|(?!(?P=q)).)*?(?P=q))"""
    r"|(?P<ident>[A-Za-z_][A-Za-z0-9_]*)|(?P<open>[(\[{])|(?P<close>[)\]}])|(?P<other>.)",
    re.DOTALL,
)
_ERROR = cel.Type.ERROR
_UNBINDABLE = re.compile(r"TIMESTAMP|DURATION|optional_type")
_CEL_POSITION = re.compile(r"<input>:(\d+):(\d+): ")
_ERROR_CATEGORIES = (
    ("Key not found", "no such key"),
    ("No such key", "no such key"),
    ("No matching overload", "wrong type (no matching overload)"),
    ("Index error", "index out of range"),
    ("divide by zero", "division by zero"),
    ("modulus by zero", "division by zero"),
    ("overflow", "integer overflow"),
    ("out of range", "value out of range"),
    ("Non-CEL value", "argument value CEL cannot represent"),
    ("Unexpected value type", "argument value CEL cannot represent"),
)


class ExpressionError(Exception):
    """An expression that cannot be loaded; ``line``/``col`` are within the expression."""

    def __init__(self, message: str, line: int = 1, col: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col


class EvaluationError(Exception):
    """An expression that failed on one call; ``str()`` is a value-free category."""


def _glob(value: str, pattern: str) -> bool:
    return fnmatchcase(value, pattern)


def _lower(value: str) -> str:
    """Unicode lowercasing (``lowerAscii`` leaves ``JÖRG`` as ``jÖrg``)."""
    return value.lower()


@cache
def environment() -> Any:
    """The CEL environment every policy expression is compiled in (built once)."""
    types = {"map": cel.Type.Map(cel.Type.STRING, cel.Type.DYN), "timestamp": cel.Type.TIMESTAMP}
    variables = {name: types[root.cel_type] for name, root in ROOTS.items()}
    glob = cel.FunctionDecl(
        "glob",
        [cel.Overload("glob_string_string", cel.Type.BOOL, [cel.Type.STRING, cel.Type.STRING],
                      impl=_glob)],
    )
    lower = cel.FunctionDecl(
        "lower",
        [cel.Overload("string_lower", cel.Type.STRING, [cel.Type.STRING], is_member=True, impl=_lower)],
    )
    return cel.NewEnv(
        variables=variables,
        extensions=[ext_strings.ExtStrings(), ext_math.ExtMath(), ext_encoders.ExtEncoders(),
                    ext_optional.ExtOptional()],
        functions=[glob, lower],
    )


@dataclass(frozen=True)
class Usage:
    """What the text of an expression refers to, found by a token scan at load."""

    roots: frozenset[str]
    comprehension_depth: int


def scan(source: str) -> Usage:
    """Root variables used and the deepest nesting of comprehension macros.

    The runtime does not expose the parsed AST, so this reads tokens, skipping
    string literals; it errs on the side of seeing more, which is safe for both uses.
    """
    roots: set[str] = set()
    stack: list[bool] = []
    depth = deepest = 0
    previous: list[str] = ["", ""]
    for match in _TOKEN.finditer(source):
        kind = match.lastgroup
        text = match.group()
        if kind == "ident" and previous[-1] != ".":
            roots.add(text)
        elif kind == "open":
            is_macro = text == "(" and previous[-2] == "." and previous[-1] in _COMPREHENSIONS
            stack.append(is_macro)
            depth += is_macro
            deepest = max(deepest, depth)
        elif kind == "close" and stack:
            depth -= stack.pop()
        if not text.isspace():
            previous = [previous[-1], text]
    return Usage(frozenset(roots & ROOTS.keys()), deepest)


class Bindings:
    """The values one evaluation reads (``args``, ``params``, ...). Lowered expressions
    read them as they are; the runtime gets them converted into an activation, made once
    and only when an expression needs the runtime."""

    __slots__ = ("_activation", "data", "native")

    def __init__(self, data: dict[str, object], native: bool | None = None) -> None:
        """``native``: whether :func:`representable` holds for ``data``, if the caller knows."""
        self.data = data
        self.native = representable(data) if native is None else native
        """Whether the runtime would see these values as lowered expressions do."""
        self._activation: Any = None

    @property
    def activation(self) -> Any:
        if self._activation is None:
            self._activation = environment().Activation(self.data)
        return self._activation


@dataclass(frozen=True, eq=False)
class CompiledExpression:
    """A checked expression plus what it needs from the evaluation context; ``native``
    is the same expression lowered to Python (see :mod:`mcpfence.policy.native`).
    Compiled once per text, so identity is equality (and hashing, per call, is cheap)."""

    source: str
    program: Any
    roots: frozenset[str]
    native: Lowered | None = None

    def evaluate(self, bindings: Bindings) -> Any:
        """Plain Python result; raise :class:`EvaluationError` on a runtime error."""
        if bindings.native and self.native is not None:
            try:
                return self.native(bindings.data)
            except NotNative:
                pass  # an error or an unmodelled case: the runtime answers
        try:
            value = self.program.eval(bindings.activation)
            result = value.plain_value()
        except Exception as exc:  # the binding raises for values it cannot convert
            raise EvaluationError(_categorize(str(exc))) from None
        # Errors come back as string values; only strings need the (slower) type check.
        if isinstance(result, str) and value.type() == _ERROR:
            raise EvaluationError(_categorize(result))
        return result


def _categorize(detail: str) -> str:
    for needle, category in _ERROR_CATEGORIES:
        if needle in detail:
            return category
    return "evaluation error"


# Compiled programs are immutable, so policies sharing an expression share one program:
# a large generated pack (10,000 policies from a few templates) compiles each text once.
@lru_cache(maxsize=65_536)
def compile_expression(source: str, result: ResultKind) -> CompiledExpression:
    """Parse, type-check and bound ``source``; raise :class:`ExpressionError`."""
    if len(source) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(
            f"expression is {len(source)} characters; the limit is {MAX_EXPRESSION_LENGTH}"
        )
    usage = scan(source)
    if usage.comprehension_depth > MAX_COMPREHENSION_DEPTH:
        raise ExpressionError(
            f"comprehensions (all, exists, map, filter, ...) are nested "
            f"{usage.comprehension_depth} deep; the limit is {MAX_COMPREHENSION_DEPTH}"
        )
    try:
        program = environment().compile(source)
    except RuntimeError as exc:
        raise _compile_error(str(exc)) from None
    returned = program.return_type()
    allowed = {"bool": cel.Type.BOOL, "string": cel.Type.STRING}.get(result)
    if allowed is not None and not (returned == allowed or returned == cel.Type.DYN):
        raise ExpressionError(f"expression must evaluate to {result}, not {returned.name()}")
    if result == "value" and _UNBINDABLE.search(returned.name()):
        # The runtime cannot pass these back in through a map, as ``variables`` is.
        raise ExpressionError(
            f"a variable cannot hold {returned.name()}; keep timestamps, durations and "
            "optionals inside the expressions that use them (or convert with string())"
        )
    return CompiledExpression(source, program, usage.roots, lower(source))


@lru_cache(maxsize=4096)
def conjunction(expressions: tuple[CompiledExpression, ...]) -> CompiledExpression | None:
    """One program that is ``true`` exactly when every expression is.

    Validations almost always pass, so the engine asks this one question first and
    evaluates the expressions one by one only when the answer is not ``true`` (CEL's
    ``&&`` is ``true`` only if every side is ``true``, errors included). One evaluation
    instead of several is most of what a passing call costs. Each source sits on lines of
    its own, so a trailing ``//`` comment ends where its expression does. None when
    there is nothing to join, or the join does not compile (then nothing is lost).
    """
    if len(expressions) < 2:
        return None
    source = " && ".join(f"(\n{expression.source}\n)" for expression in expressions)
    try:
        program = environment().compile(source)
    except RuntimeError:
        return None
    roots = frozenset().union(*(expression.roots for expression in expressions))
    return CompiledExpression(source, program, roots, lower(source))


def _compile_error(text: str) -> ExpressionError:
    """The first error of the compiler's report, with its position in the expression."""
    first = text.split("\n", 1)[0]
    found = _CEL_POSITION.search(first)
    if found is None:
        return ExpressionError(f"invalid expression: {first}")
    message = first[found.end():].strip()
    return ExpressionError(message, int(found.group(1)), int(found.group(2)))


def to_json(value: Any) -> Any:
    """A CEL result as JSON data, or :class:`EvaluationError` if it has no JSON form."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise EvaluationError("result is not a finite number")
        return value
    if isinstance(value, list):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise EvaluationError("result map has keys that are not strings")
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, datetime.datetime | datetime.timedelta):
        raise EvaluationError("result is a timestamp or duration; convert it with string()")
    raise EvaluationError(f"result of type {type(value).__name__} has no JSON form")
