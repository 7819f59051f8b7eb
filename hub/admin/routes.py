"""The /admin mount: its routes, templates, static files and session middleware."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from hub.admin.flash import SessionCookie
from hub.admin.live import LiveFeed
from hub.admin.login import Login
from hub.admin.mfa import SecondFactor
from hub.admin.middleware import SessionAuth
from hub.admin.oidc import OidcLogin
from hub.admin.pages import Dashboard
from hub.api import api_mount
from hub.auth.credentials import Credentials
from hub.auth.settings import AdminSettings
from hub.auth.throttle import FailureThrottle
from hub.clock import Clock
from hub.runtime import Runtime

HERE = Path(__file__).resolve().parent
PREFIX = "/admin"


def admin_routes(runtime: Runtime) -> list[BaseRoute]:
    """/api/v1 and /admin, only when switchboard.yaml has an `admin:` section."""
    admin = runtime.settings.admin
    if admin is None:
        return []
    credentials = Credentials(admin)
    # One budget of failures per address for the API and the login form together.
    throttle = FailureThrottle(runtime.clock.monotonic)
    return [
        api_mount(credentials, throttle),
        admin_mount(credentials, admin, runtime.clock, throttle),
    ]


def admin_mount(
    credentials: Credentials,
    settings: AdminSettings,
    clock: Clock,
    throttle: FailureThrottle | None = None,
) -> Mount:
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["pretty"] = _pretty
    templates.env.filters["when"] = _when
    pages = Dashboard(
        templates, SessionCookie(credentials.session_key, secure=settings.secure_cookies)
    )
    throttle = throttle or FailureThrottle(clock.monotonic)
    mfa = SecondFactor(templates, credentials, settings, throttle)
    login = Login(templates, credentials, settings, throttle, mfa)
    return Mount(
        PREFIX,
        routes=[
            Route("/", pages.overview, methods=["GET"], name="admin_overview"),
            Route("/login", login.form, methods=["GET"]),
            Route("/login", login.submit, methods=["POST"]),
            Route("/login/mfa", mfa.form, methods=["GET"]),
            Route("/login/mfa", mfa.submit, methods=["POST"]),
            Route("/login/mfa/enroll", mfa.enroll_form, methods=["GET"]),
            Route("/login/mfa/enroll", mfa.enroll_submit, methods=["POST"]),
            *_oidc_routes(credentials, settings),
            Route("/logout", login.logout, methods=["POST"]),
            Route("/events", pages.events, methods=["GET"]),
            Route("/events/{event_id}", pages.event, methods=["GET"]),
            Route("/deliveries", pages.deliveries, methods=["GET"]),
            Route("/deliveries/replay", pages.replay, methods=["POST"]),
            Route("/deliveries/{delivery_id}", pages.delivery, methods=["GET"]),
            Route("/rules", pages.rules, methods=["GET"]),
            Route("/rules/simulate", pages.simulate, methods=["POST"]),
            Route("/rules/reload", pages.reload, methods=["POST"]),
            Route("/sources", pages.sources, methods=["GET"]),
            Route("/sources/notices", pages.decide_notice, methods=["POST"]),
            Route("/audit", pages.audit, methods=["GET"]),
            Route("/audit.jsonl", pages.audit_export, methods=["GET"]),
            Route("/live", LiveFeed().stream, methods=["GET"]),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="admin_static"),
        ],
        middleware=[
            Middleware(SessionAuth, credentials=credentials, now=lambda: clock.now().timestamp())
        ],
    )


def _oidc_routes(credentials: Credentials, settings: AdminSettings) -> list[BaseRoute]:
    """Always served (so the role table is the same for every config); 404 without oidc."""
    if settings.oidc is None:
        return [
            Route("/login/oidc", _no_oidc, methods=["GET"]),
            Route("/login/oidc/callback", _no_oidc, methods=["GET"]),
        ]
    oidc = OidcLogin(settings.oidc, credentials, settings)
    return [
        Route("/login/oidc", oidc.start, methods=["GET"]),
        Route("/login/oidc/callback", oidc.callback, methods=["GET"]),
    ]


async def _no_oidc(request: Request) -> Response:
    return PlainTextResponse("single sign-on is not configured (admin.oidc)", status_code=404)


def _pretty(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def _when(value: str | None) -> str:
    """`2026-11-21T10:00:03.123Z` → `2026-11-21 10:00:03 UTC`: a time says its zone."""
    if not value:
        return "—"
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return value
    return parsed.strftime("%Y-%m-%d %H:%M:%S UTC")
