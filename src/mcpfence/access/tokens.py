"""Secrets that grant access: route tokens in URLs and named API tokens for clients.

Both are stored only as SHA-256 digests. A route token has 256 random bits, so
looking its digest up in a dict leaks nothing useful through timing; API tokens are
few, so :meth:`ApiTokens.verify` compares the digest against every one with
``hmac.compare_digest`` and never stops early.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from mcpfence.access.store import Store, TokenRoute

ROUTE_PATH_PREFIX = "/mcp/"
_ROUTE_PATH = re.compile(r"^/mcp/([0-9a-f]{64})(?=/|$)")


def hash_token(token: str) -> str:
    """The hex SHA-256 that stands for ``token`` everywhere it is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_route_token() -> str:
    """64 hex characters for ``/mcp/<token>``."""
    return secrets.token_hex(32)


def new_api_token() -> str:
    """256 random bits, URL-safe, to send as ``Authorization: Bearer <token>``."""
    return secrets.token_urlsafe(32)


def route_token_from_path(path: str) -> str | None:
    """The token in ``/mcp/<64 hex>`` (or a sub-path of it), else ``None``."""
    match = _ROUTE_PATH.match(path)
    return match.group(1) if match else None


def find_route(store: Store, path: str) -> TokenRoute | None:
    """The live token route a request path addresses, from the store's memory index."""
    token = route_token_from_path(path)
    return store.route_by_token_hash(hash_token(token)) if token else None


def bearer_token(authorization: str | None) -> str | None:
    """The credential of an ``Authorization: Bearer <token>`` header."""
    if not authorization:
        return None
    scheme, _, credential = authorization.strip().partition(" ")
    credential = credential.strip()
    return credential if scheme.lower() == "bearer" and credential else None


class ApiTokens:
    """Checks clients' ``Authorization`` headers against the store's API tokens."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def verify(self, authorization_header: str | None) -> str | None:
        """The name of the API token presented, or ``None``."""
        token = bearer_token(authorization_header)
        if token is None:
            return None
        digest = hash_token(token).encode()
        found: str | None = None
        for candidate in self._store.api_tokens():
            if hmac.compare_digest(digest, candidate.token_sha256.encode()):
                found = candidate.name
        return found
