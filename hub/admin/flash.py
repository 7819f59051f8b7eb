"""Flash messages: a status line for the next dashboard page, kept in the signed session.

A redirect after a POST says what happened ("Replaying 2 deliveries.") without putting
text in the URL, where anyone could write a link that makes the dashboard say anything.
"""

from __future__ import annotations

import dataclasses

from starlette.requests import Request
from starlette.responses import Response

from hub.admin.session import COOKIE, Session, encode_session

#: Messages kept at most, so a cookie cannot grow past what browsers accept.
MAX_MESSAGES = 3
MAX_CHARS = 300


class SessionCookie:
    """Writes the session cookie again with changed flash messages (same key and flags)."""

    def __init__(self, key: bytes, *, secure: bool) -> None:
        self._key = key
        self._secure = secure

    def flash(self, request: Request, response: Response, message: str) -> None:
        """Show `message` once, on the next page this session renders."""
        session: Session | None = request.auth
        if session is None:
            return
        kept = (*session.flash, message[:MAX_CHARS])[-MAX_MESSAGES:]
        self._write(request, response, dataclasses.replace(session, flash=kept))

    def clear(self, request: Request, response: Response) -> None:
        """Drop the messages `response` shows, so each is shown once."""
        session: Session | None = request.auth
        if session is not None and session.flash:
            self._write(request, response, dataclasses.replace(session, flash=()))

    def _write(self, request: Request, response: Response, session: Session) -> None:
        root = request.scope.get("root_path", "")
        now = request.state.runtime.clock.now().timestamp()
        response.set_cookie(
            COOKIE,
            encode_session(session, self._key),
            max_age=max(1, int(session.expires_at - now)),
            path=root or "/",
            httponly=True,
            samesite="lax",
            secure=self._secure,
        )
