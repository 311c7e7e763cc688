"""Console sign-in: a signed session cookie and CSRF tokens, both derived from the admin token.

Nothing is stored server-side, so every replica that shares the admin token
accepts the same session, and changing the admin token signs everyone out. The
cookie is HttpOnly and SameSite=Strict; each form also carries a CSRF token
bound to the session (or, on the sign-in form, to a short-lived pre-session
cookie), checked on every POST.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

SESSION_COOKIE = "mcpfence_console"
LOGIN_COOKIE = "mcpfence_console_login"
SESSION_SECONDS = 8 * 3600
LOGIN_SECONDS = 600


@dataclass(frozen=True)
class Session:
    """A signed-in browser: ``nonce`` binds its CSRF token."""

    nonce: str
    expires: int


class ConsoleAuth:
    """Issues and checks session cookies and CSRF tokens for one admin token."""

    def __init__(self, admin_token: str) -> None:
        self._token = admin_token.encode()
        self._key = hmac.new(self._token, b"mcpfence console v1", hashlib.sha256).digest()

    def token_matches(self, presented: str) -> bool:
        return hmac.compare_digest(presented.encode(), self._token)

    def new_cookie(self, seconds: int = SESSION_SECONDS, now: float | None = None) -> str:
        """A fresh signed value: ``EXPIRES.NONCE.SIGNATURE``."""
        expires = int((time.time() if now is None else now) + seconds)
        body = f"{expires}.{secrets.token_urlsafe(16)}"
        return f"{body}.{self._sign('cookie', body)}"

    def session(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The session a cookie value proves, or None (missing, forged or expired)."""
        if not cookie or cookie.count(".") != 2:
            return None
        expires, nonce, signature = cookie.split(".")
        if not hmac.compare_digest(signature, self._sign("cookie", f"{expires}.{nonce}")):
            return None
        if not expires.isdigit() or int(expires) < (time.time() if now is None else now):
            return None
        return Session(nonce, int(expires))

    def csrf(self, session: Session) -> str:
        return self._sign("csrf", session.nonce)

    def csrf_ok(self, session: Session | None, presented: str | None) -> bool:
        return session is not None and presented is not None and hmac.compare_digest(
            presented, self.csrf(session)
        )

    def _sign(self, purpose: str, text: str) -> str:
        return hmac.new(self._key, f"{purpose}:{text}".encode(), hashlib.sha256).hexdigest()
