"""Roles and the one table that says which role each route of the app needs.

Every route `create_app` serves is listed in `ROUTE_ROLES` (a test walks the app and
fails for any route missing here), and the admin and API middleware look the need up
with `required_role` before the handler runs. A path the table does not know needs
`admin`: a forgotten entry fails closed, never open.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Final, Literal

from starlette.routing import compile_path

#: Ordered from least to most trusted; each role may do everything the ones before it may.
Role = Literal["viewer", "operator", "admin"]
ROLES: Final[tuple[Role, ...]] = ("viewer", "operator", "admin")
#: Names accepted in switchboard.yaml for backwards compatibility (`read` was the old viewer).
ROLE_ALIASES: Final[Mapping[str, Role]] = {"read": "viewer"}

#: What a route needs: a role, or nothing at all (webhooks, health, the login form).
Need = Literal["public", "viewer", "operator", "admin"]

#: (method, full path template) → the least role that may call it. HEAD follows GET.
ROUTE_ROLES: Final[Mapping[tuple[str, str], Need]] = {
    # The hub itself: webhooks carry their own signatures; probes and metrics are open.
    ("GET", "/"): "public",
    ("POST", "/hooks/{source}"): "public",
    ("POST", "/hooks/{source}/{path:path}"): "public",
    ("GET", "/healthz"): "public",
    ("GET", "/readyz"): "public",
    ("GET", "/metrics"): "public",
    # Task lists create Notion pages: as much as a replay may do.
    ("POST", "/intake/{name}"): "operator",
    # JSON API
    ("GET", "/api/v1/openapi.json"): "public",
    ("GET", "/api/v1/events"): "viewer",
    ("GET", "/api/v1/events/{event_id}"): "viewer",  # the raw payload needs operator
    ("GET", "/api/v1/deliveries"): "viewer",
    ("GET", "/api/v1/deliveries/{delivery_id}"): "viewer",
    ("POST", "/api/v1/deliveries/{delivery_id}/replay"): "operator",
    ("POST", "/api/v1/replay"): "operator",
    ("GET", "/api/v1/rules"): "viewer",
    ("POST", "/api/v1/rules/reload"): "operator",
    ("POST", "/api/v1/simulate"): "operator",
    ("GET", "/api/v1/stats"): "viewer",
    ("GET", "/api/v1/audit"): "admin",
    # Dashboard
    ("GET", "/admin/login"): "public",
    ("POST", "/admin/login"): "public",
    # The second factor and single sign-on come before any session exists.
    ("GET", "/admin/login/mfa"): "public",
    ("POST", "/admin/login/mfa"): "public",
    ("GET", "/admin/login/mfa/enroll"): "public",
    ("POST", "/admin/login/mfa/enroll"): "public",
    ("GET", "/admin/login/oidc"): "public",
    ("GET", "/admin/login/oidc/callback"): "public",
    ("GET", "/admin/static/{path:path}"): "public",
    ("POST", "/admin/logout"): "viewer",
    ("GET", "/admin/"): "viewer",
    ("GET", "/admin/events"): "viewer",
    ("GET", "/admin/events/{event_id}"): "viewer",  # the raw payload needs operator
    ("GET", "/admin/deliveries"): "viewer",
    ("POST", "/admin/deliveries/replay"): "operator",
    ("GET", "/admin/deliveries/{delivery_id}"): "viewer",
    ("GET", "/admin/rules"): "viewer",
    ("POST", "/admin/rules/simulate"): "operator",
    ("POST", "/admin/rules/reload"): "operator",
    ("GET", "/admin/sources"): "viewer",
    ("POST", "/admin/sources/notices"): "admin",
    ("GET", "/admin/audit"): "admin",
    ("GET", "/admin/audit.jsonl"): "admin",
    ("GET", "/admin/live"): "viewer",
}

#: Seeing an event's raw body and headers (they may hold personal data) needs this role.
RAW_PAYLOAD_ROLE: Final[Role] = "operator"


def role_name(value: str) -> Role:
    """A configured role name as a `Role` (`read` is the old name of `viewer`)."""
    value = ROLE_ALIASES.get(value, value)
    for role in ROLES:
        if role == value:
            return role
    raise ValueError(f"unknown role {value!r}; use one of: {', '.join(ROLES)}")


def allows(role: Role, need: Need) -> bool:
    """Whether `role` may call a route that needs `need`."""
    return need == "public" or ROLES.index(role) >= ROLES.index(need)


def required_role(method: str, path: str) -> Need:
    """The need of the route serving `method path`; `admin` when no entry matches."""
    method = "GET" if method == "HEAD" else method
    found: list[Need] = [
        need for (m, pattern), need in _compiled() if m == method and pattern.match(path)
    ]
    if not found:
        return "admin"
    # Two templates could match one path; the stricter need wins.
    return max(found, key=_rank)


def _rank(need: Need) -> int:
    return -1 if need == "public" else ROLES.index(need)


@lru_cache(maxsize=1)
def _compiled() -> tuple[tuple[tuple[str, re.Pattern[str]], Need], ...]:
    return tuple(
        ((method, compile_path(path)[0]), need) for (method, path), need in ROUTE_ROLES.items()
    )
