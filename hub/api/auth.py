"""Bearer-token ASGI middleware for /api/v1: 401 without a valid token, 403 for a token
whose role is below what the route needs (`hub.auth.roles.ROUTE_ROLES`). Webhook routes
never pass through it."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from hub.api.http import error
from hub.auth.credentials import Credentials, bearer_token
from hub.auth.roles import required_role
from hub.auth.throttle import FailureThrottle


class BearerAuth:
    """Puts the caller's `Principal` in `scope["user"]` (read as `request.user`)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        credentials: Credentials,
        throttle: FailureThrottle,
    ) -> None:
        self.app = app
        self.credentials = credentials
        self.throttle = throttle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        need = required_role(scope["method"], scope["path"])
        if need == "public":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = str(client[0]) if client else "?"
        wait = self.throttle.blocked_for(address)
        if wait:
            response = error(
                429,
                "too_many_failures",
                f"too many failed tokens from {address}; try again in {wait} s",
                **{"Retry-After": str(wait)},
            )
            await response(scope, receive, send)
            return
        token = bearer_token(Headers(scope=scope).get("authorization"))
        principal = self.credentials.by_token(token) if token else None
        if principal is None:
            self.throttle.failed(address)
            response = error(
                401,
                "unauthorized",
                "send a valid token: Authorization: Bearer <token> (see admin.tokens)",
                **{"WWW-Authenticate": 'Bearer realm="switchboard"'},
            )
            await response(scope, receive, send)
            return
        self.throttle.succeeded(address)
        if not principal.may(need):
            response = error(
                403,
                "forbidden",
                f"token '{principal.name}' has role {principal.role}; this needs role {need}",
            )
            await response(scope, receive, send)
            return
        await self.app({**scope, "user": principal}, receive, send)
