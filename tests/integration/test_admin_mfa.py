"""TOTP second factor for password logins: enrollment with a QR code, codes accepted once
per step, recovery codes consumed on use, wrong codes throttled, no session before it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from hub.admin.mfa import PENDING_COOKIE
from hub.admin.session import COOKIE
from hub.runtime import Runtime
from hub.secrets import Secret
from hub.store import open_store
from hub.store.crypto import TokenCipher, new_key
from hub.store.mfa import begin_enrollment, get_totp
from hub.store.rotation import rotate_tokens
from hub.store.tables import mfa_totp
from tests.admin_support import PASSWORD, admin_hub, login


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[tuple[Runtime, TestClient]]:
    with admin_hub(tmp_path, run_worker=False, admin_extra="  mfa: required\n") as running:
        yield running


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def signed_in(client: TestClient) -> bool:
    return bool(client.get("/admin/", follow_redirects=False).status_code == 200)


def enroll(client: TestClient) -> tuple[pyotp.TOTP, list[str]]:
    assert (
        login(client, username="ada", password=PASSWORD).headers["location"] == "/admin/login/mfa"
    )
    page = client.get("/admin/login/mfa")  # no TOTP yet: on to enrollment
    assert page.url.path == "/admin/login/mfa/enroll"
    assert "<svg" in page.text
    secret = re.search(r'class="totp-secret">([A-Z2-7]+)<', page.text)
    assert secret
    totp = pyotp.TOTP(secret.group(1))
    wrong = client.post(
        "/admin/login/mfa/enroll", data={"csrf": csrf_of(page.text), "code": "000000"}
    )
    assert wrong.status_code == 401
    assert not signed_in(client)
    done = client.post(
        "/admin/login/mfa/enroll", data={"csrf": csrf_of(wrong.text), "code": totp.now()}
    )
    assert done.status_code == 200
    codes = re.findall(r"<li><code>([a-z2-7]{5}-[a-z2-7]{5})</code></li>", done.text)
    assert len(codes) == 10
    return totp, codes


def second_factor(client: TestClient, code: str) -> int:
    client.cookies.delete(COOKIE)
    assert login(client, username="ada", password=PASSWORD).status_code == 303
    page = client.get("/admin/login/mfa")
    assert page.status_code == 200
    answer = client.post(
        "/admin/login/mfa", data={"csrf": csrf_of(page.text), "code": code}, follow_redirects=False
    )
    return int(answer.status_code)


def test_enrollment_then_codes_once_per_step_and_recovery_codes_once(
    hub: tuple[Runtime, TestClient],
) -> None:
    runtime, client = hub
    assert not signed_in(client)
    totp, codes = enroll(client)
    assert signed_in(client)

    # The code used to confirm enrollment was used: the same step is refused (replay).
    clock = runtime.clock
    first = totp.now()
    if first == totp.at(clock.now()):  # still the same step
        assert second_factor(client, first) == 401
        assert not signed_in(client)
    assert second_factor(client, totp.at(clock.now().timestamp() + 30)) == 303
    assert signed_in(client)
    assert second_factor(client, totp.at(clock.now().timestamp() + 30)) == 401  # replayed

    assert second_factor(client, codes[0].upper()) == 303
    assert signed_in(client)
    assert second_factor(client, codes[0]) == 401  # consumed


def test_the_secret_is_stored_and_a_pending_cookie_is_no_session(
    hub: tuple[Runtime, TestClient],
) -> None:
    runtime, client = hub
    enroll(client)
    client.cookies.clear()
    login(client, username="ada", password=PASSWORD)
    pending = client.cookies.get(PENDING_COOKIE)
    assert pending
    client.cookies.set(COOKIE, pending)
    assert not signed_in(client)
    with runtime.store.engine.connect() as conn:
        (row,) = conn.execute(mfa_totp.select()).all()
    assert row.username == "ada"
    assert row.confirmed_at is not None


def test_wrong_codes_are_throttled(hub: tuple[Runtime, TestClient]) -> None:
    _, client = hub
    enroll(client)
    client.cookies.delete(COOKIE)
    login(client, username="ada", password=PASSWORD)
    page = client.get("/admin/login/mfa")
    statuses = [
        client.post(
            "/admin/login/mfa", data={"csrf": csrf_of(page.text), "code": "000000"}
        ).status_code
        for _ in range(11)
    ]
    assert statuses[:9] == [401] * 9
    assert statuses[-1] == 429


def test_the_secret_is_sealed_with_the_store_cipher(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        store.cipher = TokenCipher([Secret(new_key(), origin="test")])
        assert begin_enrollment(store, "ada", "JBSWY3DPEHPK3PXP", now=0.0)
        with store.engine.connect() as conn:
            (raw,) = conn.execute(select(mfa_totp.c.secret)).scalars().all()
        assert raw.startswith("fernet:")
        assert "JBSWY3DPEHPK3PXP" not in raw
        totp = get_totp(store, "ada")
        assert totp is not None
        assert totp.secret == "JBSWY3DPEHPK3PXP"
        assert not totp.confirmed
    finally:
        store.engine.dispose()


def test_secrets_rotate_reseals_totp_secrets_under_the_new_key(tmp_path: Path) -> None:
    # given a TOTP secret sealed under the old key
    old, new = Secret(new_key(), origin="test"), Secret(new_key(), origin="test")
    store = open_store(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        store.cipher = TokenCipher([old])
        assert begin_enrollment(store, "ada", "JBSWY3DPEHPK3PXP", now=0.0)
        # when the keys are rotated (the new one first, the old one still listed)
        rotated = rotate_tokens(store, TokenCipher([new, old]))
        # then the new key alone reads it
        store.cipher = TokenCipher([new])
        totp = get_totp(store, "ada")
        assert rotated.rewritten == 1
        assert totp is not None
        assert totp.secret == "JBSWY3DPEHPK3PXP"
    finally:
        store.engine.dispose()
