"""The JSON admin API (/api/v1) through the real app: auth, lists, details, replay, rules,
simulate, stats, and that no secret ever leaves in a response."""

from __future__ import annotations

import json
from pathlib import Path

from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from hub.admin.session import LOGIN_COOKIE
from hub.api import api_mount
from hub.api.openapi import openapi_document
from hub.app import create_app
from hub.auth.credentials import Credentials
from hub.auth.throttle import FailureThrottle
from hub.clock import FakeClock
from hub.plugins import load_plugins
from hub.rules.reload import RulesWatcher
from hub.rules.templates import TemplateEngine
from hub.runtime import Runtime, build_runtime, load_rules
from tests.admin_support import (
    ADMIN_TOKEN,
    DISCORD_TOKEN,
    ISSUE_OPENED,
    READ_TOKEN,
    admin_discord,  # noqa: F401  (the discord fixture)
    admin_hub,
    admin_settings,
    bearer,
    login,
)
from tests.fakes.discord import FakeDiscord
from tests.support import GITHUB_SECRET, fixture_path, make_settings, post_issue, wait_until

ADMIN = bearer(ADMIN_TOKEN)
READ = bearer(READ_TOKEN)
LABELED = fixture_path("github", "issues", "labeled.json").read_bytes()


def _settled(runtime: Runtime, event_id: str) -> bool:
    row = runtime.store.get_event(event_id)
    rows = runtime.store.list_deliveries(inbound_id=event_id)
    return (
        row is not None
        and row.status == "processed"
        and all(r.status in ("delivered", "dead", "skipped") for r in rows)
    )


def _wait_settled(runtime: Runtime, event_id: str) -> None:
    wait_until(lambda: _settled(runtime, event_id), 10, f"event {event_id} settled")


def _status(runtime: Runtime, delivery_id: str) -> str | None:
    row = runtime.store.get_delivery(delivery_id)
    return row.status if row else None


def _discord_row(runtime: Runtime, event_id: str) -> str:
    rows = runtime.store.list_deliveries(inbound_id=event_id)
    return next(r.id for r in rows if r.connector == "discord")


def test_no_token_or_a_wrong_token_gets_401_while_webhooks_need_none(tmp_path: Path) -> None:
    with admin_hub(tmp_path) as (_, client):
        for headers in ({}, bearer("nope"), {"Authorization": f"Basic {ADMIN_TOKEN}"}):
            response = client.get("/api/v1/events", headers=headers)
            assert response.status_code == 401, headers
            assert response.json()["code"] == "unauthorized"
            assert response.headers["www-authenticate"].startswith("Bearer")
        assert client.post("/api/v1/replay", json={"ids": ["x"]}).status_code == 401
        post_issue(client, "no-admin-auth-on-hooks")  # ingress is not behind admin auth
        assert client.get("/api/v1/events", headers=ADMIN).status_code == 200


def test_a_read_only_token_reads_but_every_post_is_403(tmp_path: Path) -> None:
    with admin_hub(tmp_path) as (_, client):
        assert client.get("/api/v1/events", headers=READ).status_code == 200
        assert client.get("/api/v1/stats", headers=READ).status_code == 200
        for path, body in (
            ("/api/v1/replay", {"dead_since": "1h"}),
            ("/api/v1/deliveries/abc/replay", {}),
            ("/api/v1/simulate", {"payload": {"type": "x"}}),
        ):
            response = client.post(path, json=body, headers=READ)
            assert response.status_code == 403, path
            assert "viewer" in response.json()["message"]


def test_event_list_filters_and_pages_through_every_event_once(tmp_path: Path) -> None:
    with admin_hub(tmp_path) as (runtime, client):
        ids = [post_issue(client, f"page-{n}") for n in range(5)]
        labeled = post_issue(client, "labeled-1", LABELED)
        for event_id in [*ids, labeled]:
            _wait_settled(runtime, event_id)

        seen: list[str] = []
        cursor = None
        for _ in range(5):
            params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
            page = client.get("/api/v1/events", params=params, headers=ADMIN).json()
            assert len(page["items"]) <= 2
            seen += [e["id"] for e in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert sorted(seen) == sorted([*ids, labeled])
        assert len(seen) == len(set(seen))

        def listed(**params: str) -> list[str]:
            response = client.get("/api/v1/events", params=params, headers=ADMIN)
            assert response.status_code == 200, response.text
            return [e["id"] for e in response.json()["items"]]

        assert listed(type="github.issues.labeled") == [labeled]
        assert sorted(listed(type="github.issues.*")) == sorted([*ids, labeled])
        assert listed(type="github.push") == []
        assert listed(q="page-3") == [ids[3]]  # the provider's delivery id
        page = client.get("/api/v1/events", params={"q": "page-3"}, headers=ADMIN).json()
        [found] = page["items"]
        # under its own name, and under the deprecated one older clients read
        assert found["provider_delivery_id"] == found["delivery_id"] == "page-3"
        assert listed(source="github", status="processed", limit="200") != []
        assert listed(status="failed") == []
        assert listed(since="2999-01-01T00:00:00Z") == []
        assert len(listed(since="1h")) == 6
        for bad in ({"cursor": "not-a-cursor"}, {"status": "lost"}, {"since": "yesterday"}):
            response = client.get("/api/v1/events", params=bad, headers=ADMIN)
            assert response.status_code == 400, bad
            assert response.json()["code"] == "bad_request"


def test_event_detail_has_payload_normalized_event_rules_and_attempts(tmp_path: Path) -> None:
    with admin_hub(tmp_path) as (runtime, client):
        event_id = post_issue(client, "detail-1")
        wait_until(lambda: _settled(runtime, event_id), 10, "event processed")
        detail = client.get(f"/api/v1/events/{event_id}", headers=ADMIN).json()
        assert detail["payload"] == json.loads(ISSUE_OPENED)
        assert detail["payload_pruned"] is False
        assert detail["headers"]["x-github-delivery"] == "detail-1"
        assert detail["provider_delivery_id"] == detail["delivery_id"] == "detail-1"
        assert [e["type"] for e in detail["normalized"]] == ["github.issues.opened"]
        assert detail["matched_rules"] == ["issue-opened"]
        by_connector = {d["connector"]: d for d in detail["deliveries"]}
        assert by_connector["log"]["status"] == "delivered"
        assert [a["outcome"] for a in by_connector["log"]["attempt_history"]] == ["ok"]
        assert by_connector["discord"]["status"] == "skipped"  # no webhook URL configured
        assert client.get("/api/v1/events/missing", headers=ADMIN).status_code == 404


def test_a_dead_delivery_sits_in_the_dlq_until_replayed_and_delivered(
    tmp_path: Path, discord: tuple[FakeDiscord, str]
) -> None:
    fake, url = discord
    fake.script.append((400, {"message": "Invalid Form Body", "code": 50035}, {}))
    with admin_hub(tmp_path, discord_url=url) as (runtime, client):
        event_id = post_issue(client, "dead-1")
        wait_until(lambda: _settled(runtime, event_id), 10, "event settled")
        dead_id = _discord_row(runtime, event_id)

        dlq = client.get("/api/v1/deliveries", params={"status": "dead"}, headers=ADMIN).json()
        assert [d["id"] for d in dlq["items"]] == [dead_id]
        one = client.get(f"/api/v1/deliveries/{dead_id}", headers=ADMIN).json()
        assert [(a["outcome"], a["status_code"]) for a in one["attempt_history"]] == [("fail", 400)]
        assert one["destination"] == "tasks"

        response = client.post(f"/api/v1/deliveries/{dead_id}/replay", headers=ADMIN)
        assert response.status_code == 202, response.text
        assert response.json()["replayed"] == [dead_id]
        wait_until(
            lambda: _status(runtime, dead_id) == "delivered",
            10,
            "the replayed delivery delivered",
        )
        again = client.post(f"/api/v1/deliveries/{dead_id}/replay", headers=ADMIN)
        assert again.status_code == 409
        assert again.json()["code"] == "already_delivered"
        assert client.post("/api/v1/deliveries/nope/replay", headers=ADMIN).status_code == 404
        empty = client.get("/api/v1/deliveries", params={"status": "dead"}, headers=ADMIN)
        assert empty.json()["items"] == []
    assert [r.status for r in fake.received] == [400, 200]


def test_bulk_replay_by_dead_since_sends_every_dead_delivery(
    tmp_path: Path, discord: tuple[FakeDiscord, str]
) -> None:
    fake, url = discord
    for _ in range(3):
        fake.script.append((400, {"message": "Invalid Form Body", "code": 50035}, {}))
    with admin_hub(tmp_path, discord_url=url) as (runtime, client):
        ids = [post_issue(client, f"bulk-{n}") for n in range(3)]
        for event_id in ids:
            _wait_settled(runtime, event_id)
        dead = sorted(_discord_row(runtime, e) for e in ids)
        assert client.post("/api/v1/replay", json={}, headers=ADMIN).status_code == 400
        response = client.post("/api/v1/replay", json={"dead_since": "1h"}, headers=ADMIN)
        assert response.status_code == 202
        assert sorted(response.json()["replayed"]) == dead
        wait_until(
            lambda: all(_status(runtime, d) == "delivered" for d in dead),
            10,
            "all replayed deliveries delivered",
        )


def test_rules_show_files_match_counts_and_a_rejected_reload(tmp_path: Path) -> None:
    with admin_hub(tmp_path) as (runtime, client):
        for n in range(2):
            _wait_settled(runtime, post_issue(client, f"rules-{n}"))
        body = client.get("/api/v1/rules", headers=ADMIN).json()
        assert body["count"] == 1
        assert body["files"][0].endswith("rules/test.yaml")
        assert body["last_error"] is None
        rule = body["rules"][0]
        assert rule["id"] == "issue-opened"
        assert rule["matched_events"] == 2
        assert {a["destination"] for a in rule["actions"]} == {"tasks", "inbox"}

        # A broken edit: the old set keeps running and the API shows why the new one failed.
        (tmp_path / "rules" / "test.yaml").write_text("rules:\n  - id: [broken\n")
        watcher = RulesWatcher(
            runtime.rules,
            runtime.settings.rules_path,
            lambda: load_rules(runtime.settings, runtime.plugins, TemplateEngine()).ruleset,
            now=lambda: runtime.clock.now().timestamp(),
        )
        assert watcher.check_once(force=True) is False
        body = client.get("/api/v1/rules", headers=ADMIN).json()
        assert body["count"] == 1
        assert "test.yaml" in body["last_error"]


def test_simulate_shows_matches_and_rendered_actions_and_sends_nothing(
    tmp_path: Path, discord: tuple[FakeDiscord, str]
) -> None:
    fake, url = discord
    with admin_hub(tmp_path, discord_url=url) as (runtime, client):
        response = client.post(
            "/api/v1/simulate",
            json={
                "source": "github",
                "headers": {"X-GitHub-Event": "issues", "X-GitHub-Delivery": "sim-1"},
                "payload": json.loads(ISSUE_OPENED),
            },
            headers=ADMIN,
        )
        assert response.status_code == 200, response.text
        (result,) = response.json()["events"]
        assert result["event"]["type"] == "github.issues.opened"
        (verdict,) = result["rules"]
        assert verdict["matched"] is True
        embed = verdict["actions"][0]["discord"]["embed"]
        assert embed["title"] == "#1 Spelling error in the README file"
        assert verdict["actions"][1]["log"]["to"] == "inbox"

        not_matching = dict(result["event"], type="github.issues.closed")
        response = client.post("/api/v1/simulate", json={"payload": not_matching}, headers=ADMIN)
        assert response.json()["events"][0]["rules"][0]["matched"] is False

        bad = client.post(
            "/api/v1/simulate", json={"source": "nosuch", "payload": {}}, headers=ADMIN
        )
        assert bad.status_code == 400
        assert "nosuch" in bad.json()["message"]
        assert runtime.store.count_events() == 0
    assert fake.received == []


def test_stats_count_per_minute_and_report_latency_and_queues(tmp_path: Path) -> None:
    with admin_hub(tmp_path) as (runtime, client):
        ids = [post_issue(client, f"stats-{n}") for n in range(3)]
        for event_id in ids:
            _wait_settled(runtime, event_id)
        body = client.get("/api/v1/stats", params={"minutes": "5"}, headers=ADMIN).json()
        assert len(body["throughput"]) == 5
        assert body["totals"]["received"] == 3
        assert body["totals"]["delivered"] == 3  # the log actions; discord is skipped
        assert body["latency"]["count"] == 3
        assert 0 <= body["latency"]["p50_s"] <= body["latency"]["p99_s"] < 10
        assert body["queues"]["events"] == 0
        assert body["deliveries"] == {"delivered": 3, "skipped": 3}


def test_no_secret_appears_in_any_api_response(
    tmp_path: Path, discord: tuple[FakeDiscord, str]
) -> None:
    _, url = discord
    payload = json.loads(ISSUE_OPENED)
    payload["issue"]["title"] = f"leaked {ADMIN_TOKEN} and {GITHUB_SECRET}"
    body = json.dumps(payload).encode()
    with admin_hub(tmp_path, discord_url=url) as (runtime, client):
        event_id = post_issue(client, "secret-1", body)
        wait_until(lambda: _settled(runtime, event_id), 10, "event settled")
        texts = [
            client.get(path, headers=ADMIN).text
            for path in (
                "/api/v1/events",
                f"/api/v1/events/{event_id}",
                "/api/v1/deliveries",
                f"/api/v1/deliveries/{_discord_row(runtime, event_id)}",
                "/api/v1/rules",
                "/api/v1/stats",
            )
        ]
    assert "leaked" in texts[1]
    for text in texts:
        for secret in (ADMIN_TOKEN, READ_TOKEN, GITHUB_SECRET, DISCORD_TOKEN, url):
            assert secret not in text


def test_openapi_document_describes_every_route_and_is_public(tmp_path: Path) -> None:
    settings = admin_settings(tmp_path)
    assert settings.admin is not None
    mount = api_mount(Credentials(settings.admin), FailureThrottle(FakeClock().monotonic))
    doc = openapi_document()
    routes = {
        (r.path, m.lower())
        for r in mount.routes
        if isinstance(r, Route) and r.path != "/openapi.json"
        for m in (r.methods or set()) - {"HEAD"}
    }
    documented = {(p, m) for p, ops in doc["paths"].items() for m in ops}
    assert documented == routes
    # the provider's delivery id's old name is still described, as deprecated
    fields = doc["components"]["schemas"]["EventSummary"]["properties"]
    assert "deprecated" not in fields["provider_delivery_id"]
    assert fields["delivery_id"]["deprecated"] is True
    assert doc["openapi"].startswith("3.1")
    with admin_hub(tmp_path) as (_, client):
        assert client.get("/api/v1/openapi.json").json() == json.loads(json.dumps(doc))
    assert isinstance(mount, Mount)


def test_without_an_admin_section_there_is_no_api_and_no_dashboard(tmp_path: Path) -> None:
    runtime = build_runtime(make_settings(tmp_path), load_plugins())
    with TestClient(create_app(runtime, run_worker=False)) as client:
        assert client.get("/api/v1/events", headers=ADMIN).status_code == 404
        assert client.get("/admin/", follow_redirects=False).status_code == 404
        assert client.get("/metrics").status_code == 200
    runtime.close()


def test_guessing_tokens_is_throttled_per_address_and_the_right_token_waits_too(
    tmp_path: Path,
) -> None:
    with admin_hub(tmp_path) as (_, client):
        answers = [
            client.get("/api/v1/events", headers=bearer(f"guess-{n}")).status_code
            for n in range(12)
        ]
        blocked = client.get("/api/v1/events", headers=bearer(ADMIN_TOKEN))
        client.get("/admin/login")
        login_page = client.post(
            "/admin/login",
            data={"csrf": client.cookies.get(LOGIN_COOKIE) or "", "token": ADMIN_TOKEN},
            follow_redirects=False,
        )
    assert answers[:10] == [401] * 10
    assert answers[10:] == [429, 429]
    assert blocked.status_code == 429  # no oracle: even a right guess is not checked now
    assert 0 < int(blocked.headers["Retry-After"]) <= 300
    assert login_page.status_code == 429  # one budget for the API and the login form


SURROGATE_RULES = """
rules:
  - id: issue-opened
    on: github.issues.opened
    actions:
      - discord:
          channel: tasks
          content: "opened {{ event.data.entity.title }}"
      - log:
          to: inbox
          message: "{{ event.data.entity.title }}"
"""


def test_a_lone_surrogate_in_a_payload_is_shown_and_sent_as_a_replacement_character(
    tmp_path: Path, discord: tuple[FakeDiscord, str]
) -> None:
    # Legal JSON: JavaScript writes a lone `\ud83d` when it cuts an emoji in half.
    doc = json.loads(ISSUE_OPENED)
    doc["issue"]["title"] = "cut \ud83d here, whole \ud83d\ude00"
    doc["issue"]["labels"] = [{"name": "\udc00"}]
    body = json.dumps(doc).encode()
    assert b"\\ud83d here" in body
    fake, url = discord
    with admin_hub(tmp_path, discord_url=url, rules=SURROGATE_RULES) as (runtime, client):
        event_id = post_issue(client, "surrogate-1", body)
        _wait_settled(runtime, event_id)

        shown = "cut \ufffd here, whole \U0001f600"
        # Every connector sent it (no retry as if the encoding error were transient).
        rows = runtime.store.list_deliveries(inbound_id=event_id)
        assert {(r.connector, r.status, r.attempts) for r in rows} == {
            ("discord", "delivered", 1),
            ("log", "delivered", 1),
        }
        assert [r.body["content"] for r in fake.ok()] == [f"opened {shown}"]
        inbox = (tmp_path / "inbox.log").read_text(encoding="utf-8")
        assert json.loads(inbox)["message"] == shown

        for path in ("/api/v1/events", f"/api/v1/events/{event_id}", "/api/v1/deliveries"):
            response = client.get(path, headers=ADMIN)
            assert response.status_code == 200, path
        detail = client.get(f"/api/v1/events/{event_id}", headers=ADMIN).json()
        assert detail["payload"]["issue"]["title"] == shown
        assert detail["normalized"][0]["data"]["entity"]["title"] == shown

        login(client, token=ADMIN_TOKEN)
        for path in ("/admin/", "/admin/events", f"/admin/events/{event_id}", "/admin/deliveries"):
            page = client.get(path)
            assert page.status_code == 200, path
        assert shown in client.get(f"/admin/events/{event_id}").text


def test_simulate_renders_a_lone_surrogate_in_its_input(tmp_path: Path) -> None:
    doc = json.loads(ISSUE_OPENED)
    doc["issue"]["title"] = "half \udbff"
    payload = json.dumps(
        {
            "source": "github",
            "headers": {"X-GitHub-Event": "issues", "X-GitHub-Delivery": "sim-1"},
            "payload": doc,
        }
    )
    with admin_hub(tmp_path) as (_, client):
        response = client.post(
            "/api/v1/simulate",
            content=payload.encode(),
            headers={**ADMIN, "Content-Type": "application/json"},
        )
        assert response.status_code == 200, response.text
        assert "half \ufffd" in response.text
