"""Upstream URLs as they may be printed: without userinfo and query.

Operators put credentials in upstream URLs (``https://user:key@host/mcp``,
``https://host/mcp?api_key=...``). Wherever mcpfence shows a URL -- errors sent to
clients, span status, logs, start-up output -- it shows :func:`redact_url`'s form,
which keeps what identifies the server (scheme, host, port, path) and marks what
was removed.
"""

from __future__ import annotations

import logging
import re
from typing import Final
from urllib.parse import urlsplit

HIDDEN: Final = "***"
# Any absolute URL in free text (an exception message may quote one), without the
# punctuation that ends a sentence or closes a bracket after it.
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]*[^\s'\"<>).,;:!\]]")


def redact_url(url: str) -> str:
    """``url`` with userinfo and query (and fragment) replaced by ``***``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # an unparsable URL may hide its secret anywhere
        return f"{url.partition('://')[0]}://{HIDDEN}"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    userinfo = f"{HIDDEN}@" if "@" in parts.netloc else ""
    netloc = f"{userinfo}{host}" + (f":{port}" if port is not None else "")
    query = f"?{HIDDEN}" if parts.query or parts.fragment else ""
    return f"{parts.scheme}://{netloc}{parts.path}{query}"


def redact_urls(text: str) -> str:
    """``text`` with every URL in it redacted."""
    return _URL.sub(lambda match: redact_url(match.group(0)), text) if "://" in text else text


class RedactingFormatter(logging.Formatter):
    """A log formatter that redacts every URL in the finished line, traceback included."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_urls(super().format(record))
