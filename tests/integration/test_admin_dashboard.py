"""The /admin dashboard through the real app: login, sessions, CSRF, roles, pages, replay,
simulate, and that secrets are never rendered."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hub.admin.session import COOKIE, decode_session, encode_session, new_session
from hub.runtime import Runtime
from tests.admin_support import (
    ADMIN_TOKEN,
    DISCORD_TOKEN,
    ISSUE_OPENED,
    PASSWORD,
    READ_TOKEN,
    admin_discord,  # noqa: F401  (the discord fixture)
    admin_hub,
    login,
)
from tests.fakes.discord import FakeDiscord
from tests.support import GITHUB_SECRET, fixture_path, post_issue, wait_until


def page_csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def _settled(runtime: Runtime, event_id: str) -> bool:
    rows = runtime.store.list_deliveries(inbound_id=event_id)
    return len(rows) == 2 and all(r.status in ("delivered", "dead", "skipped") for r in rows)


def test_pages_redirect_to_login_until_signed_in_with_a_token(tmp_path: Path) -> None:
    with admin_hub(tmp_path) as (_, client):
        response = client.get("/admin/events?source=github", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/admin/login?next=/admin/events%3Fsource%3Dgithub"

        assert login(client, token="wrong").status_code == 401
        response = login(client, token=ADMIN_TOKEN, next="/admin/events?source=github")
        assert response.status_code == 303
        assert response.headers["location"] == "/admin/events?source=github"
        cookie = response.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=")
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie or "SameSite=Lax" in cookie
        assert ADMIN_TOKEN not in cookie
        overview = client.get("/admin/")
        assert overview.status_code == 200
        assert "Throughput per minute" in overview.text
        assert "<svg" in overview.text


def test_login_needs_its_form_token_and_never_redirects_off_site(tmp_path: Path) -> None:
    with admin_hub(tmp_path) as (_, client):
        client.get("/admin/login")
        forged = client.post(
            "/admin/login",
            data={"csrf": "guess", "token": ADMIN_TOKEN},
            follow_redirects=False,
        )
        assert forged.status_code == 403
        assert COOKIE not in forged.headers.get("set-cookie", "")
        response = login(client, token=ADMIN_TOKEN, next="//evil.example/x")
        assert response.headers["location"] == "/admin/"


def test_password_login_and_a_tampered_or_expired_cookie(tmp_path: Path) -> None:
    with admin_hub(tmp_path) as (_, client):
        assert login(client, username="ada", password="wrong").status_code == 401
        assert login(client, username="nobody", password=PASSWORD).status_code == 401
        assert login(client, username="ada", password=PASSWORD).status_code == 303
        assert client.get("/admin/rules").status_code == 200

        value = client.cookies.get(COOKIE)
        assert value
        payload, _, signature = value.rpartition(".")
        client.cookies.set(COOKIE, payload + "." + signature[::-1], path="/admin")
        assert client.get("/admin/rules", follow_redirects=False).status_code == 303

    key = b"k" * 32
    session = new_session("ada", "admin", now=1000.0, ttl_s=60)
    assert decode_session(encode_session(session, key), key, now=1059.0) == session
    assert decode_session(encode_session(session, key), key, now=1061.0) is None
    assert decode_session(encode_session(session, key), b"x" * 32, now=1000.0) is None


def test_replay_from_the_dead_letter_page_needs_admin_and_csrf(
    tmp_path: Path, discord: tuple[FakeDiscord, str]
) -> None:
    fake, url = discord
    fake.script.append((400, {"message": "Invalid Form Body", "code": 50035}, {}))
    with admin_hub(tmp_path, discord_url=url) as (runtime, client):
        event_id = post_issue(client, "dash-dead")
        wait_until(lambda: _settled(runtime, event_id), 10, "event settled")
        dead = next(
            r.id for r in runtime.store.list_deliveries(inbound_id=event_id) if r.status == "dead"
        )

        # A read-only user sees the DLQ but cannot replay.
        login(client, token=READ_TOKEN)
        page = client.get("/admin/deliveries?status=dead")
        assert dead[:8] in page.text
        assert "Replay selected" not in page.text
        denied = client.post(
            "/admin/deliveries/replay", data={"csrf": page_csrf(page.text), "id": dead}
        )
        assert denied.status_code == 403

        client.cookies.clear()
        login(client, token=ADMIN_TOKEN)
        page = client.get("/admin/deliveries?status=dead")
        assert "Replay selected" in page.text
        assert "dead-letter queue" in page.text
        assert "Replay all dead (24 h)" in page.text
        no_csrf = client.post("/admin/deliveries/replay", data={"ids": dead})
        assert no_csrf.status_code == 403
        assert getattr(runtime.store.get_delivery(dead), "status", None) == "dead"

        response = client.post(
            "/admin/deliveries/replay",
            data={"csrf": page_csrf(page.text), "ids": dead, "back": "/deliveries?status=dead"},
            follow_redirects=False,
        )
        assert response.status_code == 303
        after = response.headers["location"]
        assert after == f"/admin/deliveries?status=dead&replayed={dead}"
        wait_until(
            lambda: getattr(runtime.store.get_delivery(dead), "status", None) == "delivered",
            10,
            "replayed delivery delivered",
        )
        # The row stays on the dead-letter page with its result, and its history agrees.
        shown = client.get(after).text
        assert '<p class="notice" role="status">Replaying 1 delivery.</p>' in shown
        assert 'class="replayed" data-replayed="delivered"' in shown
        assert dead[:8] in shown
        assert 'http-equiv="refresh"' not in shown  # done: no more reloading
        row = runtime.store.get_delivery(dead)
        assert row is not None
        assert row.attempts == len(runtime.store.list_attempts(dead)) == 2
        detail = client.get(f"/admin/deliveries/{dead}")
        assert detail.text.count("status-fail") == 1
        assert "status-ok" in detail.text


def test_event_page_shows_payload_normalized_event_rules_and_attempts(tmp_path: Path) -> None:
    with admin_hub(tmp_path) as (runtime, client):
        event_id = post_issue(client, "dash-event")
        wait_until(lambda: _settled(runtime, event_id), 10, "event settled")
        login(client, token=READ_TOKEN)
        listing = client.get("/admin/events", params={"type": "github.issues.*"})
        assert event_id[:8] in listing.text
        assert "Spelling error in the README file" in listing.text
        html = client.get(f"/admin/events/{event_id}").text
        assert "github.issues.opened" in html
        assert "issue-opened" in html
        assert "Codertocat/Hello-World" in html  # from the raw payload
        assert "status-ok" in html  # the log delivery's attempt
        assert client.get("/admin/events/nope").status_code == 404


def test_simulate_box_and_sources_page(tmp_path: Path) -> None:
    with admin_hub(tmp_path) as (runtime, client):
        login(client, token=ADMIN_TOKEN)
        page = client.get("/admin/rules")
        assert "issue-opened" in page.text
        result = client.post(
            "/admin/rules/simulate",
            data={
                "csrf": page_csrf(page.text),
                "source": "github",
                "headers": "X-GitHub-Event: issues\nX-GitHub-Delivery: sim",
                "payload": ISSUE_OPENED.decode(),
            },
        )
        assert result.status_code == 200
        assert "status-match" in result.text
        assert "#1 Spelling error in the README file" in result.text
        assert "nothing was sent" in result.text
        assert runtime.store.count_events() == 0

        sources = client.get("/admin/sources").text
        assert "http://testserver/hooks/github" in sources
        assert "never" in sources


def test_no_page_renders_a_secret(tmp_path: Path, discord: tuple[FakeDiscord, str]) -> None:
    _, url = discord
    with admin_hub(tmp_path, discord_url=url) as (runtime, client):
        body = ISSUE_OPENED.replace(
            b"Spelling error in the README file", f"oops {GITHUB_SECRET}".encode()
        )
        event_id = post_issue(client, "dash-secret", body)
        wait_until(lambda: _settled(runtime, event_id), 10, "event settled")
        login(client, token=ADMIN_TOKEN)
        delivery = runtime.store.list_deliveries(inbound_id=event_id)[0].id
        pages = [
            client.get(p).text
            for p in (
                "/admin/",
                "/admin/events",
                f"/admin/events/{event_id}",
                "/admin/deliveries",
                f"/admin/deliveries/{delivery}",
                "/admin/rules",
                "/admin/sources",
            )
        ]
    assert "oops" in pages[2]
    for html in pages:
        for secret in (GITHUB_SECRET, ADMIN_TOKEN, READ_TOKEN, DISCORD_TOKEN, url):
            assert secret not in html


def test_logout_needs_csrf_and_ends_the_session(tmp_path: Path) -> None:
    with admin_hub(tmp_path) as (_, client):
        login(client, token=ADMIN_TOKEN)
        page = client.get("/admin/")
        assert client.post("/admin/logout", data={"csrf": "bad"}).status_code == 403
        response = client.post(
            "/admin/logout", data={"csrf": page_csrf(page.text)}, follow_redirects=False
        )
        assert response.status_code == 303
        assert client.get("/admin/", follow_redirects=False).status_code == 303


def test_the_notion_verification_token_waits_for_the_admin_on_the_sources_page(
    tmp_path: Path,
) -> None:
    notion = "  notion: {secret: {env: SWITCHBOARD_SECRET_NOTION, optional: true}}"
    body = fixture_path("notion", "webhooks", "verification.json").read_bytes()
    token = json.loads(body)["verification_token"]
    with admin_hub(tmp_path, extra_sources=notion) as (_runtime, client):
        answer = client.post(
            "/hooks/notion", content=body, headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 200
        assert token not in answer.text  # the sender never gets it back
        assert token not in client.get("/admin/sources").text  # not without logging in
        login(client, token=ADMIN_TOKEN)
        page = client.get("/admin/sources").text
    assert "http://testserver/hooks/notion" in page
    assert token in page


def test_status_banners_come_from_the_session_once_never_from_the_url(tmp_path: Path) -> None:
    with admin_hub(tmp_path) as (_runtime, client):
        login(client, token=ADMIN_TOKEN)
        # given a link someone crafted, then the dashboard does not say what it says
        forged = client.get("/admin/deliveries?notice=Your+session+expired,+call+555-0100")
        assert 'role="status"' not in forged.text  # (the text is only in the form's `back`)
        # when the admin does something, then the page after says so, once
        response = client.post(
            "/admin/deliveries/replay",
            data={"csrf": page_csrf(forged.text), "back": "/deliveries"},
            follow_redirects=False,
        )
        assert response.headers["location"] == "/admin/deliveries"
        shown = client.get("/admin/deliveries").text
        assert '<p class="notice" role="status">Nothing selected to replay.</p>' in shown
        assert "Nothing selected to replay." not in client.get("/admin/deliveries").text


def _handshake(token: str) -> bytes:
    return json.dumps({"verification_token": token}).encode()


def test_a_flood_of_handshakes_neither_buries_the_genuine_token_nor_is_kept(
    tmp_path: Path,
) -> None:
    notion = "  notion: {secret: {env: SWITCHBOARD_SECRET_NOTION, optional: true}}"
    genuine = "secret_genuine0123456789abcdefghijklmnopqrstuv"
    with admin_hub(tmp_path, extra_sources=notion) as (_runtime, client):
        # given Notion's handshake and then unsigned ones from someone else
        tokens = [genuine] + [f"secret_forged{n:02d}abcdefghijklmnopqrstuvwxyz" for n in range(7)]
        answers = [client.post("/hooks/notion", content=_handshake(t)).status_code for t in tokens]
        # then a few a minute are kept, the rest refused (429) and not stored
        assert answers == [200] * 5 + [429] * 3
        login(client, token=ADMIN_TOKEN)
        page = client.get("/admin/sources").text
        assert genuine in page
        assert tokens[4] in page
        assert tokens[5] not in page
        # (the sender's address appears once ingress passes it to record_notice)
        assert "unproven" in page
        # when the admin keeps the one Notion's Verify accepted, the others are dropped
        ident = re.search(rf'{genuine}.*?</code>.*?name="id" value="([0-9a-f]+)"', page, re.S)
        assert ident
        no_csrf = client.post(
            "/admin/sources/notices",
            data={"source": "notion", "id": ident.group(1), "decision": "confirm"},
        )
        assert no_csrf.status_code == 403
        kept = client.post(
            "/admin/sources/notices",
            data={
                "csrf": page_csrf(page),
                "source": "notion",
                "id": ident.group(1),
                "decision": "confirm",
            },
        )
        assert "Notion&#39;s own Verify step accepts it" in kept.text
        assert genuine in kept.text
        assert all(t not in kept.text for t in tokens[1:])
