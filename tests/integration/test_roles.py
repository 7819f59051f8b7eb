"""Every route of the app has a declared role, and each role gets exactly what it declares.

The enumeration walks `create_app(...)`'s routes, mounts included, so a new route with no
entry in `hub.auth.roles.ROUTE_ROLES` fails here; then every route is called as each role
(and anonymously) and must be allowed or refused as the table says.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.routing import BaseRoute, Mount, Route
from starlette.testclient import TestClient

from hub.auth.credentials import Credentials
from hub.auth.roles import ROLES, ROUTE_ROLES, Role, allows, required_role
from tests.admin_support import (
    ADMIN_TOKEN,
    ISSUE_OPENED,
    OPERATOR_TOKEN,
    READ_TOKEN,
    admin_hub,
    admin_settings,
    bearer,
    login,
)
from tests.support import post_issue, wait_until

TOKENS = {"viewer": READ_TOKEN, "operator": OPERATOR_TOKEN, "admin": ADMIN_TOKEN}


def served_routes(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, full path template) of every route, walking into mounts."""
    for route in routes:
        if isinstance(route, Route):
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    yield method, prefix + route.path
        elif isinstance(route, Mount):
            if route.routes:
                yield from served_routes(list(route.routes), prefix + route.path)
            else:  # an app such as StaticFiles serves every path below it
                yield "GET", prefix + route.path + "/{path:path}"
        else:
            raise AssertionError(f"unknown route type {type(route).__name__}: add it here")


def concrete(path: str) -> str:
    """A path the template matches: each parameter replaced by a harmless value."""
    return re.sub(r"\{[^}]+\}", "x", path)


def refused(response: httpx.Response, *, anonymous: bool) -> bool:
    """The auth layer said no (not a handler rejecting the dummy input)."""
    if anonymous:
        location = response.headers.get("location", "")
        login_redirect = response.status_code == 303 and "/login?next=" in location
        return response.status_code in (401, 429) or login_redirect
    return response.status_code == 403 and "needs role" in response.text


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with admin_hub(tmp_path_factory.mktemp("roles")) as (_, client):
        yield client


def test_every_route_of_the_app_declares_its_role(hub: TestClient) -> None:
    served = set(served_routes(list(hub.app.routes)))  # type: ignore[attr-defined]
    missing = sorted(served - set(ROUTE_ROLES))
    assert not missing, f"routes with no role in hub/auth/roles.py ROUTE_ROLES: {missing}"
    stale = sorted(set(ROUTE_ROLES) - served)
    assert not stale, f"ROUTE_ROLES entries that no route serves: {stale}"


def test_a_path_no_entry_declares_needs_admin() -> None:
    assert required_role("GET", "/admin/not-declared") == "admin"
    assert required_role("DELETE", "/api/v1/events") == "admin"
    assert required_role("HEAD", "/admin/events") == "viewer"


@pytest.mark.parametrize("role", [*ROLES, None], ids=[*ROLES, "anonymous"])
def test_each_role_gets_exactly_what_the_table_declares(hub: TestClient, role: Role | None) -> None:
    hub.cookies.clear()
    if role is not None:
        assert login(hub, token=TOKENS[role]).status_code == 303
    headers = bearer(TOKENS[role]) if role is not None else {}
    wrong = []
    for (method, path), need in sorted(ROUTE_ROLES.items()):
        expected = need == "public" or (role is not None and allows(role, need))
        response = hub.request(
            method, concrete(path), headers=headers, follow_redirects=False, json=None
        )
        if refused(response, anonymous=role is None) == expected:
            wrong.append(f"{method} {path} ({need}): {response.status_code}")
    assert not wrong, f"{role or 'anonymous'}: {wrong}"


def test_a_viewer_sees_an_event_but_not_its_raw_payload(tmp_path: Path) -> None:
    with admin_hub(tmp_path) as (_, hub):
        _viewer_sees_no_raw_payload(hub)


def _viewer_sees_no_raw_payload(hub: TestClient) -> None:
    # Given a stored GitHub webhook (its body names the issue's author)
    event_id = post_issue(hub, "roles-raw-payload")
    wait_until(lambda: _has_event(hub, event_id), 10, f"event {event_id} stored")
    raw = json.loads(ISSUE_OPENED)
    marker = raw["repository"]["owner"]["node_id"]  # only in the raw body
    # When a viewer and an operator ask for it
    as_viewer = hub.get(f"/api/v1/events/{event_id}", headers=bearer(READ_TOKEN)).json()
    as_operator = hub.get(f"/api/v1/events/{event_id}", headers=bearer(OPERATOR_TOKEN)).json()
    # Then only the operator gets the body and headers, in the API and on the page
    assert as_viewer["payload"] is None
    assert as_viewer["headers"] is None
    assert as_viewer["payload_hidden"] is True
    assert marker not in json.dumps(as_viewer)
    assert as_operator["payload"]["repository"]["owner"]["node_id"] == marker
    assert "payload_hidden" not in as_operator
    hub.cookies.clear()
    login(hub, token=READ_TOKEN)
    page = hub.get(f"/admin/events/{event_id}")
    assert page.status_code == 200
    assert "Hidden for your role" in page.text
    assert "x-github-delivery" not in page.text.lower()
    hub.cookies.clear()
    login(hub, token=OPERATOR_TOKEN)
    page = hub.get(f"/admin/events/{event_id}")
    assert "Hidden for your role" not in page.text
    assert "x-github-delivery" in page.text.lower()


def test_the_old_read_role_is_a_viewer(tmp_path: Path) -> None:
    # The test config still says `role: read` for the viewer token and for bob.
    admin = admin_settings(tmp_path).admin
    assert admin is not None
    assert {t.name: t.role for t in admin.tokens}["viewer"] == "viewer"
    assert {u.username: u.role for u in admin.users}["bob"] == "viewer"
    # A session signed while the role was still called `read` stays valid, as a viewer.
    principal = Credentials(admin).principal_for("bob", "read")
    assert principal is not None
    assert principal.role == "viewer"


def _has_event(hub: TestClient, event_id: str) -> bool:
    response = hub.get(f"/api/v1/events/{event_id}", headers=bearer(ADMIN_TOKEN))
    return bool(response.status_code == 200)
