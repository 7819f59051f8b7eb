"""GET/POST /admin/login and POST /admin/logout.

The login form is protected by a double-submit token (a random cookie echoed in the
form), since there is no session yet to hold a CSRF token.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from hub.admin.forms import Form, checked_form, read_form
from hub.admin.session import COOKIE, LOGIN_COOKIE, encode_session, new_session
from hub.auth.audit import audit
from hub.auth.credentials import Credentials, Principal
from hub.auth.settings import AdminSettings
from hub.auth.throttle import FailureThrottle
from hub.runtime import Runtime


class SecondFactor(Protocol):
    """What sign-in needs of hub/admin/mfa.py's second factor (which imports this module
    for `start_session`, so the dependency is declared here, not imported)."""

    async def challenge(self, request: Request, principal: Principal, target: str) -> Response:
        """After a right password: ask for a code before the session starts."""
        ...


log = logging.getLogger("switchboard.admin")


class Login:
    def __init__(
        self,
        templates: Jinja2Templates,
        credentials: Credentials,
        settings: AdminSettings,
        throttle: FailureThrottle,
        mfa: SecondFactor | None = None,
    ) -> None:
        self.templates = templates
        self.credentials = credentials
        self.settings = settings
        self.throttle = throttle
        self.mfa = mfa

    async def form(self, request: Request) -> Response:
        return self._page(
            request, error=None, status=200, next_path=request.query_params.get("next", "")
        )

    async def submit(self, request: Request) -> Response:
        form = await read_form(request)
        expected = request.cookies.get(LOGIN_COOKIE, "")
        if not expected or not hmac.compare_digest(expected, form.get("csrf")):
            return self._page(
                request,
                error="The form expired; try again.",
                status=403,
                next_path=form.get("next"),
            )
        address = request.client.host if request.client else "?"
        wait = self.throttle.blocked_for(address)
        if wait:
            response = self._page(
                request,
                error=f"Too many failed logins from this address; try again in {wait} s.",
                status=429,
                next_path=form.get("next"),
            )
            response.headers["Retry-After"] = str(wait)
            await audit(request, "login", actor=_who(form), result="denied")
            return response
        principal: Principal | None
        if form.get("token"):
            principal = self.credentials.by_token(form.get("token"))
        else:
            principal = self.credentials.by_password(form.get("username"), form.get("password"))
        if principal is None:
            self.throttle.failed(address)
            log.info("admin login failed from %s", address)
            await audit(request, "login", actor=_who(form), result="failed")
            return self._page(
                request,
                error="Wrong token, username or password.",
                status=401,
                next_path=form.get("next"),
            )
        if not form.get("token") and self.mfa is not None and self.settings.mfa != "off":
            # The password was right; the session waits for the second factor (and the
            # throttle is not reset yet, so the password does not buy more code guesses).
            return await self.mfa.challenge(request, principal, form.get("next"))
        self.throttle.succeeded(address)
        method = "token" if form.get("token") else "password"
        return await start_session(
            request, principal, form.get("next"), self.credentials, self.settings, method=method
        )

    async def logout(self, request: Request) -> Response:
        await checked_form(request)
        await audit(request, "logout")
        root = request.scope.get("root_path", "")
        response = RedirectResponse(f"{root}/login", status_code=303)
        response.delete_cookie(COOKIE, path=root or "/")
        return response

    def _page(
        self, request: Request, *, error: str | None, status: int, next_path: str
    ) -> Response:
        token = secrets.token_urlsafe(24)
        context: dict[str, Any] = {
            "error": error,
            "csrf": token,
            "next": next_path,
            "has_users": bool(self.settings.users),
            "has_oidc": self.settings.oidc is not None,
            "user": None,
            "root": request.scope.get("root_path", ""),
        }
        response = self.templates.TemplateResponse(
            request, "login.html", context, status_code=status
        )
        root = request.scope.get("root_path", "")
        response.set_cookie(
            LOGIN_COOKIE,
            token,
            max_age=3600,
            path=root or "/",
            httponly=True,
            samesite="lax",
            secure=self.settings.secure_cookies,
        )
        return response


async def start_session(
    request: Request,
    principal: Principal,
    target: str,
    credentials: Credentials,
    settings: AdminSettings,
    *,
    method: str,
    via: str = "",
) -> Response:
    """Set the session cookie for `principal`, record the login, go to `target`."""
    runtime: Runtime = request.state.runtime
    session = new_session(
        principal.name,
        principal.role,
        now=runtime.clock.now().timestamp(),
        ttl_s=settings.session_ttl_s,
        via=via,
    )
    root = request.scope.get("root_path", "")
    response = RedirectResponse(safe_target(request, target), status_code=303)
    response.set_cookie(
        COOKIE,
        encode_session(session, credentials.session_key),
        max_age=int(settings.session_ttl_s),
        path=root or "/",
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
    )
    response.delete_cookie(LOGIN_COOKIE, path=root or "/")
    log.info("admin login: %s (%s)", principal.name, principal.role)
    await audit(
        request, "login", actor=principal.name, role=principal.role, detail={"method": method}
    )
    return response


def safe_target(request: Request, target: str) -> str:
    """`target` if it is a path of this dashboard, else its overview: never an open redirect."""
    root: str = request.scope.get("root_path", "")
    if not target.startswith(root + "/") or target.startswith("//"):
        return root + "/"
    return target


def _who(form: Form) -> str:
    """Who a failed login claimed to be: the username typed, never a token or password."""
    return form.get("username") or "(token)"
