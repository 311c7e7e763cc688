"""The common case of CEL as Python functions, with the C++ runtime as the authority.

Handing values to the C++ runtime costs more than most policy expressions do: an
activation (~4 µs) and an evaluation (~3.5 µs) per expression, against well under a
microsecond for ``args.to.trim().lowerAscii()`` done in Python. So at load each
expression the runtime has already parsed and type-checked is also lowered, when it
stays within a subset of CEL, to one Python function: a Python expression that calls
the small helpers below, compiled once.

Lowered functions promise one thing: **they return exactly the value the runtime would,
or they raise** :class:`NotNative`, and the caller asks the runtime instead. They model
only the successful paths of well-typed operations on JSON data: every error (a missing
key, a wrong type, an overflow, ``true && 'x'``), every mixed int/double operation,
every value the runtime would convert differently (integers outside int64, strings with
NUL) raises :class:`NotNative`, so errors and their categories always come from the
runtime. Anything the lowering does not know (timestamps, uints, bytes, most extension
functions) is simply not lowered. ``tests/policy/test_native.py`` holds both evaluators
to this on every shipped expression and on the value spellings models send.
"""

from __future__ import annotations

import datetime
import math
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any

from mcpfence.policy.context import ROOTS

Env = Mapping[str, Any]
Native = Callable[[Env], Any]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_RANGE = 256
# Unicode White_Space: what the runtime's trim() strips (str.strip() would also take U+001C-U+001F).
_WHITE_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + (
    "\u2028\u2029\u202f\u205f\u3000"
)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DECIMAL = re.compile(r"-?[0-9]{1,18}")


class NotNative(Exception):
    """This evaluation is the runtime's to make (an error, or a case not modelled here)."""


class _Refused(Exception):
    """The expression is outside the lowered subset: it always runs on the runtime."""


class CelType:
    """A CEL type value, as ``type(x)`` returns and ``string``, ``int``, ... name."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


_TYPES = {
    name: CelType(name)
    for name in ("bool", "int", "uint", "double", "string", "bytes", "null_type", "list", "map")
}
_TYPE_OF: dict[type, CelType] = {
    bool: _TYPES["bool"], int: _TYPES["int"], float: _TYPES["double"], str: _TYPES["string"],
    type(None): _TYPES["null_type"], list: _TYPES["list"], dict: _TYPES["map"],
}


# --- values ------------------------------------------------------------------------------


def representable(value: Any) -> bool:
    """Whether the runtime takes ``value`` in as the value lowered functions see: JSON data
    with int64 integers and strings without NUL (the runtime turns larger integers into
    uints or refuses them, and reads strings only up to a NUL). Timestamps pass through."""
    try:
        return _representable(value)
    except RecursionError:
        return False


def _representable(value: Any) -> bool:
    kind = type(value)
    if kind is str:
        return "\x00" not in value and (value.isascii() or _encodable(value))
    if kind is dict:
        return all(type(key) is str and _representable(key) and _representable(item)
                   for key, item in value.items())
    if kind is list:
        return all(map(_representable, value))
    if kind is int:
        return bool(INT64_MIN <= value <= INT64_MAX)
    return kind is bool or kind is float or value is None or isinstance(value, datetime.datetime)


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _checked(value: int) -> int:
    if not INT64_MIN <= value <= INT64_MAX:
        raise NotNative
    return value


class Optional:
    """CEL's ``optional`` (``a.?b``, ``m[?k]``): only ``orValue`` and ``hasValue`` read one
    here; anything else done with it is the runtime's."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


_EMPTY = Optional(None)
_PLAIN = frozenset({bool, int, float, str, type(None), list, dict, CelType})


def equal(a: Any, b: Any) -> bool:
    """CEL's heterogeneous equality: values of different types are unequal (int against
    double, which the runtime compares numerically, is left to it)."""
    kind = type(a)
    if kind not in _PLAIN or type(b) not in _PLAIN:
        raise NotNative
    if kind is not type(b):
        if {kind, type(b)} == {int, float}:
            raise NotNative
        return False
    if kind is list:
        return len(a) == len(b) and all(map(equal, a, b))
    if kind is dict:
        return a.keys() == b.keys() and all(equal(a[key], b[key]) for key in a)
    if kind is CelType:
        return a is b
    return bool(a == b)


def _result(value: Any) -> Any:
    """The value as the runtime's ``plain_value()`` would hand it back (no type values)."""
    kind = type(value)
    if kind is CelType or kind is Optional:
        raise NotNative
    if kind is list:
        for item in value:
            _result(item)
    elif kind is dict:
        for item in value.values():
            _result(item)
    return value


# --- lexing ------------------------------------------------------------------------------

_LEX = re.compile(
    r"""(?P<space>\s+|//[^\n]*)"""
    r"""|(?P<float>(?:[0-9]+\.[0-9]+(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+|\.[0-9]+(?:[eE][+-]?[0-9]+)?))(?![0-9A-Za-z_.])"""
    r"""|(?P<int>0[xX][0-9a-fA-F]+|[0-9]+)(?![0-9A-Za-z_.])"""
    r"""|(?P<string>[rR]?(?:'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"))"""
    r"""|(?P<ident>[A-Za-z_][A-Za-z0-9_]*)"""
    r"""|(?P<op>&&|\|\||==|!=|<=|>=|[<>!?:+\-*/%.,()\[\]{}])"""
)
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r"}


def _tokens(source: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(source):
        found = _LEX.match(source, position)
        if found is None:
            raise _Refused(source[position:])  # triple quotes, bytes, uints, `.?`, `{`, ...
        position = found.end()
        kind = found.lastgroup or ""
        if kind != "space":
            tokens.append((kind, found.group()))
    tokens.append(("end", ""))
    return tokens


def _string(text: str) -> str:
    raw = text[0] in "rR"
    body = text[2:-1] if raw else text[1:-1]
    if raw:
        return body
    out: list[str] = []
    chars = iter(body)
    for char in chars:
        if char == "\\":
            escaped = next(chars)
            if escaped not in _ESCAPES:
                raise _Refused(f"escape \\{escaped}")
            char = _ESCAPES[escaped]
        out.append(char)
    return "".join(out)


# --- parsing: CEL's grammar, producing Python source ---------------------------------------


Code = str
"""A Python expression over ``env`` (the bindings) and the names in the parser's namespace."""


class _Parser:
    """Recursive descent over CEL's precedence levels, writing each node as a Python
    expression that calls the helpers below (one function per expression, no interpretive
    layer). Only expressions the runtime has already accepted get here, so syntax errors
    need no reporting: anything unexpected refuses the whole expression."""

    def __init__(self, source: str) -> None:
        self.tokens = _tokens(source)
        self.at = 0
        self.scope: dict[str, str] = {}  # comprehension variable -> Python name
        self.namespace: dict[str, Any] = {}

    def ref(self, value: Any) -> Code:
        """A name in the generated function's namespace for ``value`` (a helper, a constant)."""
        name = f"_{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def call(self, function: Callable[..., Any], *args: Code) -> Code:
        return f"{self.ref(function)}({', '.join(args)})"

    def truth(self, code: Code) -> Code:
        return self.call(_truth, code)

    def peek(self) -> str:
        return self.tokens[self.at][1] if self.tokens[self.at][0] == "op" else ""

    def take(self, op: str) -> bool:
        if self.peek() == op:
            self.at += 1
            return True
        return False

    def expect(self, op: str) -> None:
        if not self.take(op):
            raise _Refused(f"expected {op}")

    def parse(self) -> Native:
        code = self.expr()
        if self.tokens[self.at][0] != "end":
            raise _Refused("trailing input")
        # The text holds only names made here (``_N`` for helpers and every literal, ``vN_name``
        # for comprehension variables) and repr()'d field names: nothing of the policy runs as code.
        function: Native = eval(compile(f"lambda env: {code}", "<cel>", "eval"), self.namespace)
        return function

    def expr(self) -> Code:
        condition = self.logical("||")
        if not self.take("?"):
            return condition
        then = self.logical("||")
        self.expect(":")
        return f"({then} if {self.truth(condition)} else {self.expr()})"

    def logical(self, op: str) -> Code:
        node = self.logical("&&") if op == "||" else self.relation()
        while self.take(op):
            right = self.logical("&&") if op == "||" else self.relation()
            # false && anything is false even when the other side fails; other failures are the runtime's.
            if op == "||":
                node = f"(True if {self.truth(node)} else {self.truth(right)})"
            else:
                node = f"({self.truth(right)} if {self.truth(node)} else False)"
        return node

    def relation(self) -> Code:
        node = self.arithmetic(("+", "-"))
        while self.peek() in _RELATIONS or self.tokens[self.at] == ("ident", "in"):
            op = self.tokens[self.at][1]
            self.at += 1
            node = self.call(_RELATIONS.get(op, _in), node, self.arithmetic(("+", "-")))
        return node

    def arithmetic(self, ops: tuple[str, ...]) -> Code:
        node = self.operand(ops)
        while self.peek() in ops:
            op = self.tokens[self.at][1]
            self.at += 1
            node = self.call(_ARITHMETIC[op], node, self.operand(ops))
        return node

    def operand(self, ops: tuple[str, ...]) -> Code:
        """An operand of ``+``/``-`` is a product; of ``*``, ``/``, ``%`` a unary."""
        return self.arithmetic(("*", "/", "%")) if ops[0] == "+" else self.unary()

    def unary(self) -> Code:
        if self.take("!"):
            return self.call(_not, self.unary())
        if self.take("-"):
            if self.tokens[self.at][0] in ("int", "float"):
                return self.member(self.literal(negative=True))
            return self.call(_negate, self.unary())
        return self.member(self.primary())

    def literal(self, negative: bool = False) -> Code:
        kind, text = self.tokens[self.at]
        self.at += 1
        if kind == "int":
            value: Any = int(text, 16 if text[:2] in ("0x", "0X") else 10) * (-1 if negative else 1)
            if not INT64_MIN <= value <= INT64_MAX:
                raise _Refused("integer literal out of range")
        else:
            value = -float(text) if negative else float(text)
        return self.ref(value)

    def primary(self) -> Code:
        kind, text = self.tokens[self.at]
        if kind in ("int", "float"):
            return self.literal()
        if kind == "string":
            self.at += 1
            return self.ref(_string(text))
        if self.take("("):
            code = self.expr()
            self.expect(")")
            return code
        if self.take("["):
            return f"[{', '.join(self.arguments(']'))}]"
        if self.take("{"):
            return self.map_literal()
        if kind != "ident":
            raise _Refused(f"unexpected {text!r}")
        self.at += 1
        if self.take("("):
            return self.function(text)
        return self.identifier(text)

    def identifier(self, name: str) -> Code:
        if name in ("true", "false", "null"):
            return {"true": "True", "false": "False", "null": "None"}[name]
        if name in self.scope:
            return self.scope[name]
        if name in ROOTS and ROOTS[name].cel_type == "map":
            return f"env[{name!r}]"  # a root not bound raises KeyError: the runtime's
        if name in _TYPES:
            return self.ref(_TYPES[name])
        raise _Refused(f"identifier {name}")  # now, and names only the runtime knows

    def map_literal(self) -> Code:
        entries: list[Code] = []
        while not self.take("}"):
            key = self.expr()
            self.expect(":")
            entries.append(f"({key}, {self.expr()})")
            if not self.take(","):
                self.expect("}")
                break
        return self.call(_map_of, f"[{', '.join(entries)}]")

    def arguments(self, close: str) -> list[Code]:
        items: list[Code] = []
        while not self.take(close):
            items.append(self.expr())
            if not self.take(","):
                self.expect(close)
                break
        return items

    def function(self, name: str) -> Code:
        if name == "has":
            target, field = self.selection()
            self.expect(")")
            return self.call(_has, target, repr(field))
        return self.apply(name, self.arguments(")"), method=False)

    def apply(self, name: str, args: list[Code], method: bool) -> Code:
        function = _FUNCTIONS.get((name, len(args), method))
        if function is None:
            raise _Refused(f"function {name}")
        return self.call(function, *args)

    def selection(self) -> tuple[Code, str]:
        """``has()``'s argument: an operand and the field selected last from it."""
        target = self.primary()
        field: str | None = None
        while self.peek() in (".", "["):
            if field is not None:
                target, field = self.call(_select, target, repr(field)), None
            if self.take("["):
                index = self.expr()
                self.expect("]")
                target = self.call(_index, target, index)
                continue
            self.at += 1
            kind, name = self.tokens[self.at]
            if kind != "ident":
                raise _Refused("member")
            self.at += 1
            if self.take("("):
                target = self.method(target, name)
            else:
                field = name
        if field is None:
            raise _Refused("has() without a field selection")
        return target, field

    def member(self, code: Code) -> Code:
        while True:
            if self.take("."):
                optional = self.take("?")
                kind, name = self.tokens[self.at]
                if kind != "ident":
                    raise _Refused("member")
                self.at += 1
                if optional:
                    code = self.call(_optional_index, code, repr(name))
                elif self.take("("):
                    code = self.method(code, name)
                else:
                    code = self.call(_select, code, repr(name))
            elif self.take("["):
                optional = self.take("?")
                index = self.expr()
                self.expect("]")
                code = self.call(_optional_index if optional else _index, code, index)
            else:
                return code

    def method(self, target: Code, name: str) -> Code:
        if name in _MACROS:
            return self.comprehension(target, name)
        if name == "matches":
            kind, text = self.tokens[self.at]
            if kind != "string" or self.tokens[self.at + 1] != ("op", ")"):
                raise _Refused("matches() with a pattern that is not a literal")
            self.at += 2
            return self.call(_matches, target, self.ref(_regex(_string(text))))
        return self.apply(name, [target, *self.arguments(")")], method=True)

    def comprehension(self, target: Code, name: str) -> Code:
        """``all``, ``exists``, ``exists_one``, ``map``, ``filter`` as Python comprehensions,
        the variable a Python local of its own."""
        kind, variable = self.tokens[self.at]
        if kind != "ident" or variable in ROOTS:
            raise _Refused("comprehension variable")
        self.at += 1
        self.expect(",")
        local = f"v{len(self.scope)}_{variable}"
        outer, self.scope = self.scope, {**self.scope, variable: local}
        bodies = self.arguments(")")
        self.scope = outer
        if len(bodies) not in ((1, 2) if name == "map" else (1,)):
            raise _Refused("comprehension arity")
        body = bodies[-1]
        # filter and map keep the order, so they iterate lists only (see _range)
        ordered = name in ("filter", "map")
        loop = f"for {local} in {self.call(_range, target, str(ordered))}"
        if name == "all":
            return f"all({self.truth(body)} {loop})"
        if name == "exists":
            return f"any({self.truth(body)} {loop})"
        if name in ("exists_one", "existsOne"):
            return f"([{self.truth(body)} {loop}].count(True) == 1)"
        if name == "filter":
            return f"[{local} {loop} if {self.truth(body)}]"
        keep = f" if {self.truth(bodies[0])}" if len(bodies) == 2 else ""
        return f"[{body} {loop}{keep}]"


_MACROS = frozenset({"all", "exists", "exists_one", "existsOne", "map", "filter"})


# --- nodes ---------------------------------------------------------------------------------


def _select(value: Any, field: str) -> Any:
    if type(value) is not dict or field not in value:
        raise NotNative
    return value[field]


def _has(value: Any, field: str) -> bool:
    if type(value) is not dict:
        raise NotNative
    return field in value


def _optional_index(container: Any, key: Any) -> Optional:
    if type(container) is Optional:
        if container is _EMPTY:
            return _EMPTY
        container = container.value
    kind = type(container)
    if kind is dict and type(key) is str:
        return Optional(container[key]) if key in container else _EMPTY
    if kind is list and type(key) is int:
        return Optional(container[key]) if 0 <= key < len(container) else _EMPTY
    raise NotNative


def _map_of(entries: list[tuple[Any, Any]]) -> dict[str, Any]:
    built = dict(entries)
    if len(built) != len(entries) or not all(type(key) is str for key in built):
        raise NotNative  # duplicate or non-string keys
    return built


def _truth(value: Any) -> bool:
    if type(value) is not bool:
        raise NotNative
    return value


def _not(value: Any) -> bool:
    return not _truth(value)


def _negate(value: Any) -> Any:
    kind = type(value)
    if kind is int:
        return _checked(-value)
    if kind is float:
        return -value
    raise NotNative


def _same(a: Any, b: Any, *kinds: type) -> type:
    kind = type(a)
    if kind is not type(b) or kind not in kinds:
        raise NotNative
    return kind


def _add(a: Any, b: Any) -> Any:
    kind = _same(a, b, int, float, str, list)
    return _checked(a + b) if kind is int else a + b


def _subtract(a: Any, b: Any) -> Any:
    return _checked(a - b) if _same(a, b, int, float) is int else a - b


def _multiply(a: Any, b: Any) -> Any:
    return _checked(a * b) if _same(a, b, int, float) is int else a * b


def _divide(a: Any, b: Any) -> Any:
    kind = _same(a, b, int, float)
    if b == 0 or (kind is int and a == INT64_MIN and b == -1):
        raise NotNative
    if kind is float:
        return a / b
    quotient = abs(a) // abs(b)  # C division truncates toward zero
    return quotient if (a < 0) == (b < 0) else -quotient


def _modulo(a: Any, b: Any) -> int:
    _same(a, b, int)
    if b == 0 or b == -1:
        raise NotNative
    remainder: int = abs(a) % abs(b)  # the sign of the dividend, as in C
    return remainder if a >= 0 else -remainder


def _ordering(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    """``<`` and friends, between two values of one orderable type."""
    def ordered(a: Any, b: Any) -> bool:
        _same(a, b, int, float, str, bool)
        return compare(a, b)
    return ordered


_RELATIONS: dict[str, Callable[[Any, Any], Any]] = {
    "==": equal,
    "!=": lambda a, b: not equal(a, b),
    "<": _ordering(operator.lt),
    "<=": _ordering(operator.le),
    ">": _ordering(operator.gt),
    ">=": _ordering(operator.ge),
}
_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": _add, "-": _subtract, "*": _multiply, "/": _divide, "%": _modulo,
}


def _in(item: Any, container: Any) -> bool:
    kind = type(container)
    if kind is list:
        return any(equal(item, element) for element in container)
    if kind is dict and type(item) is str:
        return item in container
    raise NotNative


def _index(container: Any, key: Any) -> Any:
    kind = type(container)
    if kind is list and type(key) is int and 0 <= key < len(container):
        return container[key]
    if kind is dict and type(key) is str and key in container:
        return container[key]
    raise NotNative


# --- functions -----------------------------------------------------------------------------


def _text(value: Any) -> str:
    if type(value) is not str:
        raise NotNative
    return value


def _size(value: Any) -> int:
    if type(value) not in (str, list, dict):
        raise NotNative
    return len(value)


def _to_int(value: Any) -> int:
    kind = type(value)
    if kind is int:
        return int(value)
    if kind is float and math.isfinite(value) and abs(value) < 2**63:
        return _checked(int(value))
    if kind is str and _DECIMAL.fullmatch(value):
        return int(value)
    raise NotNative


def _to_string(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return str(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    raise NotNative  # doubles: the runtime's formatting is its own


def _to_double(value: Any) -> float:
    if type(value) is int:
        return float(value)
    if type(value) is float:
        return value
    raise NotNative


def _split(value: Any, separator: Any) -> list[str]:
    text, separator = _text(value), _text(separator)
    return list(text) if separator == "" else text.split(separator)


def _join(value: Any, separator: Any = "") -> str:
    if type(value) is not list or not all(type(item) is str for item in value):
        raise NotNative
    return _text(separator).join(value)


def _replace(value: Any, old: Any, new: Any) -> str:
    if _text(old) == "":
        raise NotNative
    return _text(value).replace(old, _text(new))


def _or_value(optional: Any, default: Any) -> Any:
    if type(optional) is not Optional:
        raise NotNative
    return default if optional is _EMPTY else optional.value


def _has_value(optional: Any) -> bool:
    if type(optional) is not Optional:
        raise NotNative
    return optional is not _EMPTY


def _type(value: Any) -> CelType:
    found = _TYPE_OF.get(type(value))
    if found is None:
        raise NotNative
    return found


_FUNCTIONS: dict[tuple[str, int, bool], Callable[..., Any]] = {
    ("size", 1, False): _size,
    ("size", 1, True): _size,
    ("int", 1, False): _to_int,
    ("string", 1, False): _to_string,
    ("double", 1, False): _to_double,
    ("type", 1, False): _type,
    ("dyn", 1, False): lambda value: value,
    ("glob", 2, False): lambda value, pattern: fnmatchcase(_text(value), _text(pattern)),
    ("contains", 2, True): lambda value, part: _text(part) in _text(value),
    ("startsWith", 2, True): lambda value, part: _text(value).startswith(_text(part)),
    ("endsWith", 2, True): lambda value, part: _text(value).endswith(_text(part)),
    ("trim", 1, True): lambda value: _text(value).strip(_WHITE_SPACE),
    ("lowerAscii", 1, True): lambda value: _text(value).translate(_ASCII_LOWER),
    ("upperAscii", 1, True): lambda value: _text(value).translate(_ASCII_UPPER),
    ("lower", 1, True): lambda value: _text(value).lower(),
    ("split", 2, True): _split,
    ("join", 1, True): _join,
    ("join", 2, True): _join,
    ("replace", 3, True): _replace,
    ("orValue", 2, True): _or_value,
    ("hasValue", 1, True): _has_value,
}


# --- comprehensions ------------------------------------------------------------------------


def _range(value: Any, ordered: bool) -> Iterator[Any]:
    """What a comprehension iterates: a list's items, a map's keys. The runtime visits a
    map's keys in an order of its own, so results that keep the order (``filter``,
    ``map``) over a map are left to it; so are long ranges, which it iterates ~100x as
    fast (two nested comprehensions over 50,000 items would otherwise take minutes)."""
    kind = type(value)
    if (kind is not list and (ordered or kind is not dict)) or len(value) > MAX_RANGE:
        raise NotNative
    return iter(value)


# --- matches(): RE2 patterns Python's re reads the same way -----------------------------------

_REGEX_TOKEN = re.compile(
    r"\\[dDsSwW]|\\[.\\^$*+?()\[\]{}|/\-]|\\[nt]|[^\\]|\\."
)
_CLASSES = {"\\d": "0-9", "\\s": "\\t\\n\\f\\r ", "\\w": "0-9A-Za-z_"}


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    """Translate an RE2 pattern when it is plainly the same in Python: ASCII classes
    spelled out, ``$`` as end of text, and case folding only where the two fold alike.
    Anything else is refused."""
    flags = 0
    if pattern.startswith("(?i)"):
        pattern, flags = pattern[4:], re.IGNORECASE
    if flags and (not pattern.isascii() or re.search(r"[iI\[]", pattern)):
        # Python also folds i with the dotless and dotted i (in classes too); RE2 does not.
        raise _Refused("case-folded pattern with letters the two libraries fold differently")
    out: list[str] = []
    in_class = False
    for piece in _REGEX_TOKEN.findall(pattern):
        if piece in ("\\d", "\\s", "\\w"):
            out.append(_CLASSES[piece] if in_class else f"[{_CLASSES[piece]}]")
        elif piece in ("\\D", "\\S", "\\W"):
            if in_class:
                raise _Refused("negated class inside a class")
            out.append(f"[^{_CLASSES[piece.lower()]}]")
        elif piece.startswith("\\") and piece[1] not in ".\\^$*+?()[]{}|/-nt":
            raise _Refused(f"escape {piece}")
        elif piece == "[":
            if in_class:
                raise _Refused("nested [ in a class")  # [[:alpha:]]
            in_class = True
            out.append(piece)
        elif piece == "]" and in_class:
            in_class = False
            out.append(piece)
        elif piece == "$" and not in_class:
            out.append(r"\Z")
        else:
            out.append(piece)
    translated = "".join(out)
    if "(?" in translated.replace("(?:", ""):
        raise _Refused("group flags or named groups")
    try:
        return re.compile(translated, flags)
    except re.error:
        raise _Refused("pattern") from None


def _matches(value: Any, pattern: re.Pattern[str]) -> bool:
    return pattern.search(_text(value)) is not None


# --- entry point -----------------------------------------------------------------------------


class Lowered:
    """An expression as one Python function; call with the bindings the runtime would get."""

    __slots__ = ("_function",)

    def __init__(self, function: Native) -> None:
        self._function = function

    def __call__(self, env: Env) -> Any:
        try:
            return _result(self._function(env))
        except (NotNative, LookupError, RecursionError):  # LookupError: a root not bound
            raise NotNative from None


@lru_cache(maxsize=65_536)
def lower(source: str) -> Lowered | None:
    """``source`` (already accepted by the runtime) as a Python function, or None when it
    uses anything outside the subset this module models."""
    try:
        return Lowered(_Parser(source).parse())
    except (_Refused, RecursionError, StopIteration, ValueError, SyntaxError, MemoryError):
        return None  # SyntaxError, MemoryError: nesting deeper than Python's compiler takes
