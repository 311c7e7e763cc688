"""Reading a POST's JSON-RPC messages: strict parsing and the 2026-07-28 routing headers.

Every transport that accepts client POSTs (the relay, hosted sessions, legacy SSE)
checks bodies the same way, so the rules live here once.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Final

from mcp.shared.inbound import validate_mcp_param_headers

from mcpfence import jsonrpc
from mcpfence.jsonrpc import Json, JsonRpcError, Message, RequestId
from mcpfence.protocol import BATCH_VERSIONS, NAME_BEARING, PROTOCOL_VERSION_META
from mcpfence.protocol import ROUTING_HEADER_VERSIONS as MODERN_VERSIONS
from mcpfence.toolcall import parse_tool_call
from mcpfence.transport.http import BodyTooLarge, Request, media_type

# Requests the pipeline decides: never accepted as notifications.
CHECKED_REQUESTS: Final = frozenset({"tools/call"})


# A tool's input schema when it mirrors arguments into ``Mcp-Param-*`` headers, else None.
ParamSchemas = Callable[[str], Mapping[str, Json] | None]


async def read_messages(
    request: Request, max_body_bytes: int, protocol_version: str, schemas: ParamSchemas | None = None
) -> tuple[list[Message], bool]:
    """A POST's JSON-RPC messages, checked like the relay checks them (raises JsonRpcError)."""
    if media_type(request.headers.get("content-type", "")) != "application/json":
        raise JsonRpcError(jsonrpc.INVALID_REQUEST, "Content-Type must be application/json", status=415)
    try:
        body = await request.body(max_body_bytes)
    except BodyTooLarge:
        message = f"request body exceeds {max_body_bytes} bytes"
        raise JsonRpcError(jsonrpc.INVALID_REQUEST, message, status=413) from None
    messages, batch = parse_body(body, request.headers.get("mcp-protocol-version", protocol_version))
    check_routing_headers(request, messages)
    if schemas is not None:
        check_param_headers(request, messages, schemas)
    return messages, batch


def check_param_headers(request: Request, messages: list[Message], schemas: ParamSchemas) -> None:
    """2026-07-28: ``Mcp-Param-*`` headers must agree with the arguments (HTTP 400, -32020).

    Gateways may route on those headers, so mcpfence answers a mismatch as the MCP
    server it stands in for must; tools it has not seen listed are left to the upstream.
    """
    if request.headers.get("mcp-protocol-version") not in MODERN_VERSIONS or len(messages) != 1:
        return
    call = parse_tool_call(messages[0])
    if call is None or call.arguments is None:
        return
    schema = schemas(call.name)
    if schema is not None:
        rejection = validate_mcp_param_headers(schema, call.arguments, request.headers)
        if rejection is not None:
            raise _mismatch(rejection.message, messages[0].get("id"))


def parse_body(body: bytes, protocol_version: str) -> tuple[list[Message], bool]:
    """Parse a POST body into validated messages; batches only where the revision has them."""
    payload = jsonrpc.loads(body)
    if isinstance(payload, list):
        if protocol_version not in BATCH_VERSIONS:
            raise JsonRpcError(
                jsonrpc.INVALID_REQUEST, f"batches are not part of MCP {protocol_version}"
            )
        if not payload:
            raise JsonRpcError(jsonrpc.INVALID_REQUEST, "Invalid Request: empty batch")
        messages = [_client_message(item) for item in payload]
        _reject_reused_ids(messages)
        return messages, True
    return [_client_message(payload)], False


def _reject_reused_ids(messages: list[Message]) -> None:
    """Answers find their request by id: two requests under one id could swap their checks."""
    seen: set[RequestId] = set()
    for message in messages:
        if jsonrpc.is_request(message):
            if message["id"] in seen:
                reason = f"Invalid Request: id {message['id']!r} is used twice in this batch"
                raise JsonRpcError(jsonrpc.INVALID_REQUEST, reason)
            seen.add(message["id"])


def _client_message(value: object) -> Message:
    """A valid JSON-RPC message that is not a request dressed as a notification.

    Policies decide requests; a ``tools/call`` without an id would skip them and
    reach a lenient server all the same, so it is refused here.
    """
    message = jsonrpc.validate_message(value)
    if "id" not in message and message.get("method") in CHECKED_REQUESTS:
        raise JsonRpcError(jsonrpc.INVALID_REQUEST, f"Invalid Request: {message['method']} needs an id")
    return message


def check_routing_headers(request: Request, messages: list[Message]) -> None:
    """``Mcp-Method``/``Mcp-Name`` must agree with the body they route (HTTP 400, -32020)."""
    headers = request.headers
    method_header = headers.get("mcp-method")
    name_header = headers.get("mcp-name")
    if method_header is None and name_header is None:
        if headers.get("mcp-protocol-version") in MODERN_VERSIONS and _is_one_request(messages):
            # 2026-07-28 requires the header on every request: gateways route by it.
            raise _mismatch("Mcp-Method header is required on a 2026-07-28 request", messages[0].get("id"))
        return
    message = messages[0]
    request_id = message.get("id") if len(messages) == 1 else None
    for routing in ("mcp-method", "mcp-name", "mcp-protocol-version"):
        if request.header_count(routing) > 1:
            raise _mismatch(f"{routing} header appears more than once", request_id)
    if len(messages) != 1 or "method" not in message:
        raise _mismatch("Mcp-Method header on a body that is not a single request", request_id)
    if method_header is not None and method_header != message["method"]:
        raise _mismatch("Mcp-Method header does not match the request body's method", request_id)
    key = NAME_BEARING.get(message["method"])
    params = message.get("params")
    named = params.get(key) if key is not None and isinstance(params, dict) else None
    if named is not None and (name_header is None or _decode_header_value(name_header) != named):
        raise _mismatch(f"Mcp-Name header does not match the request body's {key!r}", request_id)


def _is_one_request(messages: list[Message]) -> bool:
    return len(messages) == 1 and "method" in messages[0] and "id" in messages[0]


def _mismatch(message: str, request_id: object) -> JsonRpcError:
    """-32020 at HTTP 400, answering the request's id when it has a usable one."""
    return JsonRpcError(jsonrpc.HEADER_MISMATCH, message, status=400, id=jsonrpc.usable_id(request_id))


def _decode_header_value(value: str) -> str:
    """Header values that are not plain ASCII travel as ``=?base64?...?=``."""
    if value.startswith("=?base64?") and value.endswith("?="):
        try:
            return base64.b64decode(value[9:-2], validate=True).decode("utf-8")
        except ValueError:
            return value
    return value


def meta_version(messages: list[Message]) -> str:
    """The revision a 2026-07-28 client names in ``_meta`` (it has no handshake), or ``""``."""
    params = messages[0].get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    version = meta.get(PROTOCOL_VERSION_META) if isinstance(meta, dict) else None
    return version if isinstance(version, str) else ""
