"""TOTP second factor for password logins (`admin.mfa: optional|required`).

After a right password the browser gets a short-lived pending cookie (signed with a key
derived from the session key, so it can never pass for a session) and is sent to the
code form, or to enrollment if the user has no confirmed TOTP yet. Enrollment shows a QR
code (inline SVG), confirms with a first code and shows ten recovery codes once; only
their hashes are stored. Each 30 s step is accepted once (replays are refused), recovery
codes are consumed on use, and wrong codes count against the login throttle.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from typing import Any

import pyotp
import segno
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from hub.admin.forms import read_form
from hub.admin.login import safe_target, start_session
from hub.auth.audit import audit
from hub.auth.credentials import Credentials, Principal
from hub.auth.roles import role_name
from hub.auth.settings import AdminSettings
from hub.auth.throttle import FailureThrottle
from hub.runtime import Runtime
from hub.store import mfa as rows

log = logging.getLogger("switchboard.admin")

PENDING_COOKIE = "switchboard_mfa"
#: How long a right password waits for its second factor.
PENDING_TTL_S = 300.0
RECOVERY_CODES = 10
ISSUER = "Switchboard"


@dataclass(frozen=True, slots=True)
class Pending:
    """A user whose password was right, on their way to a second factor."""

    name: str
    role: str
    csrf: str
    target: str
    expires_at: float


class SecondFactor:
    def __init__(
        self,
        templates: Jinja2Templates,
        credentials: Credentials,
        settings: AdminSettings,
        throttle: FailureThrottle,
    ) -> None:
        self.templates = templates
        self.credentials = credentials
        self.settings = settings
        self.throttle = throttle
        self._key = hmac.new(credentials.session_key, b"mfa-pending", hashlib.sha256).digest()

    async def challenge(self, request: Request, principal: Principal, target: str) -> Response:
        """After a right password: remember the user for a few minutes, ask for a code."""
        pending = Pending(
            principal.name,
            principal.role,
            secrets.token_urlsafe(24),
            target,
            _now(request) + PENDING_TTL_S,
        )
        response = RedirectResponse(f"{_root(request)}/login/mfa", status_code=303)
        response.set_cookie(
            PENDING_COOKIE,
            self._encode(pending),
            max_age=int(PENDING_TTL_S),
            path=_root(request) or "/",
            httponly=True,
            samesite="lax",
            secure=self.settings.secure_cookies,
        )
        return response

    async def form(self, request: Request) -> Response:
        pending = self._pending(request)
        if pending is None:
            return _back_to_login(request)
        totp = await asyncio.to_thread(rows.get_totp, _runtime(request).store, pending.name)
        if totp is None or not totp.confirmed:
            return RedirectResponse(f"{_root(request)}/login/mfa/enroll", status_code=303)
        return self._page(request, "mfa.html", pending, status=200)

    async def submit(self, request: Request) -> Response:
        pending = self._pending(request)
        form = await read_form(request)
        if pending is None or not hmac.compare_digest(pending.csrf, form.get("csrf")):
            return _back_to_login(request)
        address = request.client.host if request.client else "?"
        wait = self.throttle.blocked_for(address)
        if wait:
            await audit(request, "login", actor=pending.name, result="denied")
            response = self._page(
                request,
                "mfa.html",
                pending,
                status=429,
                error=f"Too many failed attempts from this address; try again in {wait} s.",
            )
            response.headers["Retry-After"] = str(wait)
            return response
        store = _runtime(request).store
        code = form.get("code")
        totp = await asyncio.to_thread(rows.get_totp, store, pending.name)
        ok = False
        method = "password+totp"
        if totp is not None and totp.confirmed:
            digits = "".join(code.split())
            if digits.isdigit():
                step = matching_step(totp.secret, digits, _now(request))
                ok = step is not None and await asyncio.to_thread(
                    rows.claim_step, store, pending.name, step
                )
            else:
                method = "password+recovery"
                ok = await asyncio.to_thread(
                    rows.use_recovery_code, store, pending.name, recovery_hash(code)
                )
        if not ok:
            self.throttle.failed(address)
            log.info("admin second factor failed for %s from %s", pending.name, address)
            await audit(
                request, "login", actor=pending.name, result="failed", detail={"method": method}
            )
            return self._page(
                request,
                "mfa.html",
                pending,
                status=401,
                error="Wrong or already used code.",
            )
        self.throttle.succeeded(address)
        response = await self._signed_in(request, pending, method)
        if method == "password+recovery":
            left = await asyncio.to_thread(rows.recovery_codes_left, store, pending.name)
            log.info("admin %s used a recovery code; %d left", pending.name, left)
        return response

    async def enroll_form(self, request: Request) -> Response:
        pending = self._pending(request)
        if pending is None:
            return _back_to_login(request)
        secret = pyotp.random_base32()
        started = await asyncio.to_thread(
            rows.begin_enrollment, _runtime(request).store, pending.name, secret, now=_now(request)
        )
        if not started:  # enrolled already: ask for the code instead
            return RedirectResponse(f"{_root(request)}/login/mfa", status_code=303)
        return self._enroll_page(request, pending, secret, status=200)

    async def enroll_submit(self, request: Request) -> Response:
        pending = self._pending(request)
        form = await read_form(request)
        if pending is None or not hmac.compare_digest(pending.csrf, form.get("csrf")):
            return _back_to_login(request)
        store = _runtime(request).store
        totp = await asyncio.to_thread(rows.get_totp, store, pending.name)
        if totp is not None and totp.confirmed:  # enrolled: no skipping the code
            return RedirectResponse(f"{_root(request)}/login/mfa", status_code=303)
        if form.get("skip"):
            if self.settings.mfa != "optional":
                return _back_to_login(request)
            return await self._signed_in(request, pending, "password")
        if totp is None:
            return RedirectResponse(f"{_root(request)}/login/mfa/enroll", status_code=303)
        address = request.client.host if request.client else "?"
        wait = self.throttle.blocked_for(address)
        step = (
            None
            if wait
            else matching_step(totp.secret, "".join(form.get("code").split()), _now(request))
        )
        codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]
        if step is None or not await asyncio.to_thread(
            lambda: rows.confirm_enrollment(
                store,
                pending.name,
                step=step,
                code_hashes=[recovery_hash(c) for c in codes],
                now=_now(request),
            )
        ):
            if not wait:
                self.throttle.failed(address)
            error = (
                f"Too many failed attempts from this address; try again in {wait} s."
                if wait
                else "That code does not match; check the app's clock and try the next code."
            )
            return self._enroll_page(
                request, pending, totp.secret, status=429 if wait else 401, error=error
            )
        self.throttle.succeeded(address)
        await audit(request, "mfa.enroll", actor=pending.name, role=pending.role)
        session = await self._signed_in(request, pending, "password+totp")
        # Show the recovery codes once, on the page that also sets the session cookie.
        response = self.templates.TemplateResponse(
            request,
            "mfa_codes.html",
            {
                "codes": codes,
                "next": safe_target(request, pending.target),
                "user": None,
                "root": _root(request),
            },
            headers={"Cache-Control": "no-store"},
        )
        for key, value in session.headers.items():
            if key.lower() == "set-cookie":
                response.headers.append("set-cookie", value)
        return response

    async def _signed_in(self, request: Request, pending: Pending, method: str) -> Response:
        principal = self.credentials.principal_for(pending.name, pending.role)
        if principal is None:  # removed or changed role meanwhile
            return _back_to_login(request)
        response = await start_session(
            request, principal, pending.target, self.credentials, self.settings, method=method
        )
        response.delete_cookie(PENDING_COOKIE, path=_root(request) or "/")
        return response

    def _enroll_page(
        self,
        request: Request,
        pending: Pending,
        secret: str,
        *,
        status: int,
        error: str | None = None,
    ) -> Response:
        uri = pyotp.TOTP(secret).provisioning_uri(name=pending.name, issuer_name=ISSUER)
        return self._page(
            request,
            "mfa_enroll.html",
            pending,
            status=status,
            error=error,
            qr=segno.make(uri, error="m").svg_inline(scale=4, title="TOTP QR code"),
            secret=secret,
            optional=self.settings.mfa == "optional",
        )

    def _page(
        self,
        request: Request,
        name: str,
        pending: Pending,
        *,
        status: int,
        error: str | None = None,
        **extra: Any,
    ) -> Response:
        context: dict[str, Any] = {
            "error": error,
            "csrf": pending.csrf,
            "username": pending.name,
            "user": None,
            "root": _root(request),
            **extra,
        }
        return self.templates.TemplateResponse(
            request, name, context, status_code=status, headers={"Cache-Control": "no-store"}
        )

    def _pending(self, request: Request) -> Pending | None:
        value = request.cookies.get(PENDING_COOKIE) or ""
        payload, _, signature = value.rpartition(".")
        if not payload or not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            pending = Pending(
                str(data["n"]),
                role_name(str(data["r"])),
                str(data["c"]),
                str(data["t"]),
                float(data["e"]),
            )
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        return pending if pending.expires_at > _now(request) else None

    def _encode(self, pending: Pending) -> str:
        data = {
            "n": pending.name,
            "r": pending.role,
            "c": pending.csrf,
            "t": pending.target,
            "e": pending.expires_at,
        }
        body = json.dumps(data, separators=(",", ":")).encode()
        payload = base64.urlsafe_b64encode(body).decode().rstrip("=")
        return f"{payload}.{self._sign(payload)}"

    def _sign(self, payload: str) -> str:
        digest = hmac.new(self._key, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def matching_step(secret: str, code: str, now: float) -> int | None:
    """The 30 s step whose code is `code` (this step or one either side for clock drift)."""
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = int(now // totp.interval)
    found = None
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


def new_recovery_code() -> str:
    """`xxxxx-xxxxx`: 50 random bits, letters and digits that cannot be misread."""
    raw = base64.b32encode(secrets.token_bytes(10)).decode().lower()[:10]
    return f"{raw[:5]}-{raw[5:]}"


def recovery_hash(code: str) -> str:
    """Codes are random (not chosen by people), so a plain SHA-256 of the normalised code."""
    normal = "".join(ch for ch in code.lower() if ch.isalnum())
    return hashlib.sha256(normal.encode()).hexdigest()


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.state.runtime
    return runtime


def _now(request: Request) -> float:
    return _runtime(request).clock.now().timestamp()


def _root(request: Request) -> str:
    root: str = request.scope.get("root_path", "")
    return root


def _back_to_login(request: Request) -> Response:
    response = RedirectResponse(f"{_root(request)}/login", status_code=303)
    response.delete_cookie(PENDING_COOKIE, path=_root(request) or "/")
    return response
