"""JSON-RPC 2.0 framing: strict parsing, canonical serialization, error objects.

What mcpfence checks must be exactly what it forwards, so bodies are parsed once
into plain objects (duplicate keys rejected: two readers could otherwise see two
different values) and every forwarded message is serialized by us.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, NoReturn

import orjson

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603
HEADER_MISMATCH: Final = -32020

Message = dict[str, Any]
# A parsed JSON value, as :func:`loads` returns it.
Json = dict[str, "Json"] | list["Json"] | str | int | float | bool | None
RequestId = str | int | None


class JsonRpcError(Exception):
    """A JSON-RPC error to answer with, plus the HTTP status that carries it."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        status: int = 400,
        id: RequestId = None,
        headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.id = id
        self.headers = list(headers)

    def to_message(self) -> Message:
        return error_response(self.id, self.code, self.message)


def _reject_duplicates(pairs: list[tuple[str, Json]]) -> dict[str, Json]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        keys = [key for key, _ in pairs]
        duplicate = next(key for i, key in enumerate(keys) if key in keys[:i])
        raise JsonRpcError(INVALID_REQUEST, f"duplicate JSON key {duplicate!r}")
    return obj


def _reject_constant(name: str) -> NoReturn:
    raise JsonRpcError(PARSE_ERROR, f"Parse error: {name} is not JSON")


def _finite_float(text: str) -> float:
    """``1e999`` reads as infinity, which no JSON encoder writes back: a parse error."""
    value = float(text)
    if math.isinf(value):
        raise JsonRpcError(PARSE_ERROR, f"Parse error: {text} is too large for a JSON number")
    return value


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_decoder = json.JSONDecoder(
    object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant, parse_float=_finite_float
)
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_canonical = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False, sort_keys=True)


def _as_written(body: bytes) -> Json:
    """``body`` parsed by orjson if orjson writes the value back as exactly ``body``, else None.

    Such a body is one the strict parser accepts and reads as the same value: orjson
    writes back no duplicate key (it keeps one), no whitespace, no escape it would write
    otherwise, no integer beyond 64 bits (it reads one as a float). Compact bodies, as
    clients and servers send them, thus skip the strict parser's duplicate check, which
    runs in Python once per object. Bodies orjson would not write back are not tried:
    with ``": `` (Python's default separators, indentation) or a ``\\u`` escape (orjson
    writes characters, save control ones, as they are).
    """
    if body.find(b'": ') >= 0 or body.find(b"\\u") >= 0:  # see one_line: find, not in
        return None
    try:
        value: Json = orjson.loads(body)
        return value if orjson.dumps(value) == body else None
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):  # the strict parser says why
        return None


def loads(body: bytes | str) -> Json:
    """Parse JSON strictly: malformed or infinite → -32700, duplicate keys → -32600.

    A ``\\uD800``-style escape without its pair parses into a string no UTF-8
    encoder can write back, so it is refused here rather than fail when forwarded.
    """
    if isinstance(body, bytes) and (written := _as_written(body)) is not None:
        return written
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        value: Json = _decoder.decode(text)
        if _SURROGATE_ESCAPE.search(text):
            _encoder.encode(value).encode("utf-8")
        return value
    except JsonRpcError:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise JsonRpcError(PARSE_ERROR, f"Parse error: {exc}") from None
    except RecursionError:
        raise JsonRpcError(PARSE_ERROR, "Parse error: nested too deeply") from None


# Line boundaries for str.splitlines() (and U+2028/U+2029 for JavaScript) that JSON
# encoders leave raw; every other one (CR, LF, VT, FF, FS, GS, RS) is a control
# character JSON always escapes.
_RAW_LINE_BREAKS = tuple((chr(code).encode(), f"\\u{code:04x}".encode()) for code in (0x85, 0x2028, 0x2029))


def one_line(data: bytes) -> bytes:
    """JSON text with U+0085, U+2028 and U+2029 escaped (they occur only inside strings).

    A JSON value written as a line (stdio, line-delimited streams, the decision log)
    could otherwise be split in two by a client-chosen string for readers that
    break lines at them.
    """
    # The common case: two scans. ``find``, since ``bytes.__contains__`` first tries its
    # argument as an integer, and raises (and clears) a formatted TypeError for bytes.
    if data.find(b"\xc2\x85") < 0 and data.find(b"\xe2\x80") < 0:
        return data
    for raw, escaped in _RAW_LINE_BREAKS:
        data = data.replace(raw, escaped)
    return data


def dumps(value: object) -> bytes:
    """Serialize compactly as UTF-8, one line; this is the only form mcpfence forwards.

    orjson is ~20x as fast as the standard encoder (benchmarks/README.md); what it
    refuses (integers beyond 64 bits, lone surrogates) goes to the standard encoder,
    which writes the integers and refuses the rest. orjson would write a non-finite
    float as ``null``: none reaches here, since ``loads`` refuses them and mutations
    must produce JSON (``policy.expressions.to_json``).
    """
    try:
        return one_line(orjson.dumps(value))
    except orjson.JSONEncodeError:
        return one_line(_encoder.encode(value).encode("utf-8"))


def canonical(value: object) -> bytes:
    """One byte string per JSON value (sorted keys, no spaces, UTF-8): for hashes and equality."""
    return _canonical.encode(value).encode("utf-8")


def is_request(message: Message) -> bool:
    return "method" in message and "id" in message


def is_response(message: Message) -> bool:
    return "method" not in message and ("result" in message or "error" in message)


def validate_message(value: object) -> Message:
    """Check the JSON-RPC 2.0 envelope of one message; raise -32600 if it is not one."""
    if not isinstance(value, dict):
        raise JsonRpcError(INVALID_REQUEST, "Invalid Request: a JSON-RPC message must be an object")
    request_id = value.get("id")
    if value.get("jsonrpc") != "2.0":
        message = 'Invalid Request: "jsonrpc" must be "2.0"'
        raise JsonRpcError(INVALID_REQUEST, message, id=usable_id(request_id))
    if "method" in value and "id" in value and usable_id(request_id) is None:
        raise JsonRpcError(INVALID_REQUEST, "Invalid Request: id must be a string or an integer")
    if "method" in value:
        if not isinstance(value["method"], str):
            raise JsonRpcError(INVALID_REQUEST, "Invalid Request: method must be a string", id=request_id)
        if "params" in value and not isinstance(value["params"], dict | list):
            raise JsonRpcError(INVALID_REQUEST, "Invalid Request: params must be an object", id=request_id)
    elif not ("id" in value and ("result" in value or "error" in value)):
        message = "Invalid Request: neither a request, a notification nor a response"
        raise JsonRpcError(INVALID_REQUEST, message)
    return value


def usable_id(value: object) -> RequestId:
    """``value`` if it can be a request id (string or integer, not bool), else None."""
    return value if isinstance(value, str | int) and not isinstance(value, bool) else None


def error_response(request_id: RequestId, code: int, message: str, data: Json = None) -> Message:
    error: dict[str, Json] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def result_response(request_id: RequestId, result: Mapping[str, object]) -> Message:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}
