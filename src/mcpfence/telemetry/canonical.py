"""The hash the decision log records for a call's arguments."""

from __future__ import annotations

import hashlib
from typing import Any

from mcpfence.jsonrpc import canonical


def sha256_hex(value: Any) -> str:
    """The SHA-256 of ``value``'s canonical JSON (:func:`mcpfence.jsonrpc.canonical`), as hex."""
    return hashlib.sha256(canonical(value)).hexdigest()
