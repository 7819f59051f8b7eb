"""Session ASGI middleware for /admin: read the signed cookie, or send to the login page.

Sets `scope["user"]` (a Principal) and `scope["auth"]` (the Session, for its CSRF
token). Unauthenticated requests are redirected to /admin/login; a role below what the
route needs (`hub.auth.roles.ROUTE_ROLES`) gets 403. Webhook routes are outside this
mount and never see it.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from hub.admin.session import COOKIE, decode_session
from hub.auth.credentials import Credentials
from hub.auth.roles import required_role


class SessionAuth:
    def __init__(self, app: ASGIApp, *, credentials: Credentials, now: Callable[[], float]) -> None:
        self.app = app
        self.credentials = credentials
        self.now = now

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        root = scope.get("root_path", "")
        need = required_role(scope["method"], scope["path"])
        session = decode_session(
            conn.cookies.get(COOKIE), self.credentials.session_key, now=self.now()
        )
        principal = (
            self.credentials.principal_for(session.name, session.role, session.via)
            if session
            else None
        )
        if principal is None or session is None:
            if need == "public":
                await self.app({**scope, "user": None, "auth": None}, receive, send)
                return
            target = quote(scope["path"] + ("?" + conn.url.query if conn.url.query else ""))
            login = RedirectResponse(f"{root}/login?next={target}", status_code=303)
            await login(scope, receive, send)
            return
        if not principal.may(need):
            denied = PlainTextResponse(
                f"'{principal.name}' has role {principal.role}; this needs role {need}",
                status_code=403,
            )
            await denied(scope, receive, send)
            return
        await self.app({**scope, "user": principal, "auth": session}, receive, send)
