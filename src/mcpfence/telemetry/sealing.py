"""Encrypting the replay fields of decision records at rest (Fernet: AES-128-CBC + HMAC-SHA256).

Recorded arguments and results can hold personal data. With a key, the decision
log keeps them only as a Fernet token, so a copied log file is useless without
the key; ``mcpfence replay`` and the console open them with the same key, read
from the environment variable the config names (never from the config itself).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from mcpfence.config import ConfigError, DecisionLogConfig

__all__ = ["SealError", "Sealer", "sealer"]


class SealError(Exception):
    """No usable key, or a sealed value that this key cannot open."""


class Sealer:
    """Seals a JSON object into a string and opens it again."""

    def __init__(self, key: str | bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError) as error:
            raise SealError("not a Fernet key (32 url-safe base64-encoded bytes)") from error

    def seal(self, value: Mapping[str, Any]) -> str:
        data = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return self._fernet.encrypt(data.encode("utf-8")).decode("ascii")

    def open(self, token: str) -> dict[str, Any]:
        try:
            value = json.loads(self._fernet.decrypt(token.encode("ascii")))
        except (InvalidToken, UnicodeEncodeError, ValueError) as error:
            raise SealError("the sealed fields cannot be opened with this key") from error
        if not isinstance(value, dict):
            raise SealError("the sealed fields are not a JSON object")
        return value


def sealer(settings: DecisionLogConfig, env: Mapping[str, str] | None = None) -> Sealer | None:
    """The sealer for the key in ``settings.key_env``; None when no variable is named.

    A named but unset variable stops start-up: writing plaintext when encryption
    was asked for would fail open.
    """
    variable = settings.key_env
    if variable is None:
        return None
    value = (os.environ if env is None else env).get(variable)
    if not value:
        raise ConfigError(f"decision_log.key_env: environment variable {variable} is not set")
    try:
        return Sealer(value)
    except SealError as error:
        raise ConfigError(f"decision_log.key_env: {variable} is {error}") from None
