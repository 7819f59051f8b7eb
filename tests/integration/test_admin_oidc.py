"""OpenID Connect sign-in against a real local provider over HTTP: discovery, the
authorization code flow with PKCE, and ID tokens refused for a wrong audience, expiry,
nonce, state or signature."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from starlette.testclient import TestClient

from hub.runtime import Runtime
from hub.store.audit import AuditFilter, list_audit
from tests.admin_support import admin_hub
from tests.fakes.oidc import FakeProvider
from tests.servers import serve_in_thread

CLIENT_ID = "switchboard-test"
CLIENT_SECRET = "oidc-client-secret-0123456789"

OIDC_YAML = """  oidc:
    issuer: {issuer}
    client_id: {client_id}
    client_secret: {{env: TEST_OIDC_SECRET}}
    groups_claim: groups
    role_map: {{eng: viewer, oncall: operator, platform: admin}}
"""


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    fake = FakeProvider(CLIENT_ID, CLIENT_SECRET)
    with serve_in_thread(fake.app()) as url:
        fake.issuer = url
        yield fake


@pytest.fixture
def hub(tmp_path: Path, provider: FakeProvider) -> Iterator[tuple[Runtime, TestClient]]:
    provider.misbehave.__init__()  # type: ignore[misc]  # a good provider again
    provider.groups = ["eng", "oncall"]
    with admin_hub(
        tmp_path,
        run_worker=False,
        admin_extra=OIDC_YAML.format(issuer=provider.issuer, client_id=CLIENT_ID),
        environ={"TEST_OIDC_SECRET": CLIENT_SECRET},
    ) as running:
        yield running


def sign_in(client: TestClient, *, state: str | None = None) -> httpx.Response:
    """Start at the hub, let the provider consent over real HTTP, come back to the hub."""
    start = client.get("/admin/login/oidc?next=/admin/deliveries", follow_redirects=False)
    assert start.status_code == 303
    authorize = start.headers["location"]
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["nonce"][0]
    assert "code_verifier" not in query
    with httpx.Client() as browser:
        consent = browser.get(authorize, follow_redirects=False)
    assert consent.status_code == 302, consent.text
    back = urlsplit(consent.headers["location"])
    assert back.path == "/admin/login/oidc/callback"
    params = {k: v[0] for k, v in parse_qs(back.query).items()}
    if state is not None:
        params["state"] = state
    return client.get(f"{back.path}?{urlencode(params)}", follow_redirects=False)


def signed_in(client: TestClient) -> bool:
    return bool(client.get("/admin/", follow_redirects=False).status_code == 200)


def test_sign_in_maps_groups_to_the_highest_role(hub: tuple[Runtime, TestClient]) -> None:
    runtime, client = hub
    done = sign_in(client)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/admin/deliveries"
    assert signed_in(client)
    assert client.get("/admin/audit", follow_redirects=False).status_code == 403  # not admin
    (entry,) = list_audit(runtime.store, AuditFilter(action="login", limit=1))
    assert (entry.actor, entry.role, entry.result) == ("carol@example.com", "operator", "ok")
    assert entry.detail == {"method": "oidc"}
    assert CLIENT_SECRET not in done.text


def test_a_user_no_group_maps_is_refused(
    hub: tuple[Runtime, TestClient], provider: FakeProvider
) -> None:
    _, client = hub
    provider.groups = ["sales"]
    assert sign_in(client).status_code == 403
    assert not signed_in(client)


@pytest.mark.parametrize(
    ("attribute", "value", "reason"),
    [
        ("audience", "someone-else", "aud"),
        ("expires_in", -600, "expired"),
        ("nonce", "not-the-nonce", "nonce"),
        ("foreign_key", True, "signature"),
    ],
)
def test_bad_id_tokens_are_refused(
    hub: tuple[Runtime, TestClient],
    provider: FakeProvider,
    attribute: str,
    value: object,
    reason: str,
) -> None:
    _, client = hub
    setattr(provider.misbehave, attribute, value)
    refused = sign_in(client)
    assert refused.status_code == 403
    assert reason in refused.text
    assert not signed_in(client)


def test_a_callback_with_another_state_is_refused(
    hub: tuple[Runtime, TestClient], provider: FakeProvider
) -> None:
    _, client = hub
    before = provider.token_requests
    refused = sign_in(client, state="forged-state")
    assert refused.status_code == 403
    assert "state" in refused.text
    assert provider.token_requests == before  # the code was never exchanged
    assert not signed_in(client)
