"""The audit trail: every admin action is stored with actor, role, time, address, target
and result; listed by the API and the dashboard with filters, exported as JSON lines,
pruned by retention."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from hub.auth.audit import record_role_changes
from hub.runtime import Runtime
from hub.store.audit import AuditFilter, list_audit
from hub.store.retention import prune
from tests.admin_support import (
    ADMIN_TOKEN,
    OPERATOR_TOKEN,
    PASSWORD,
    READ_TOKEN,
    admin_hub,
    bearer,
    login,
)
from tests.integration.test_admin_dashboard import page_csrf

ADMIN = bearer(ADMIN_TOKEN)
OPERATOR = bearer(OPERATOR_TOKEN)


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[tuple[Runtime, TestClient]]:
    with admin_hub(tmp_path) as (runtime, client):
        yield runtime, client


def newest(runtime: Runtime, action: str) -> dict[str, Any]:
    entries = list_audit(runtime.store, AuditFilter(action=action, limit=1))
    assert entries, f"no {action} entry in the audit trail"
    e = entries[0]
    return {
        "actor": e.actor,
        "role": e.role,
        "target": e.target,
        "result": e.result,
        "address": e.address,
        "detail": e.detail,
        "at": e.at,
    }


def test_logins_that_succeed_fail_or_are_throttled_and_logouts(
    hub: tuple[Runtime, TestClient],
) -> None:
    runtime, client = hub
    login(client, token=OPERATOR_TOKEN)
    entry = newest(runtime, "login")
    assert entry["actor"] == "oncall"
    assert entry["role"] == "operator"
    assert entry["result"] == "ok"
    assert entry["address"] == "testclient"
    assert entry["detail"] == {"method": "token"}
    assert abs(entry["at"] - runtime.clock.now().timestamp()) < 60

    page = client.get("/admin/")
    client.post("/admin/logout", data={"csrf": page_csrf(page.text)})
    entry = newest(runtime, "logout")
    assert (entry["actor"], entry["role"], entry["result"]) == ("oncall", "operator", "ok")

    login(client, username="ada", password=PASSWORD)
    entry = newest(runtime, "login")
    assert (entry["actor"], entry["role"], entry["detail"]) == (
        "ada",
        "admin",
        {"method": "password"},
    )

    client.cookies.clear()
    login(client, username="ada", password="wrong password")
    entry = newest(runtime, "login")
    assert (entry["actor"], entry["role"], entry["result"]) == ("ada", None, "failed")
    login(client, token="not-a-token")
    entry = newest(runtime, "login")
    assert (entry["actor"], entry["result"]) == ("(token)", "failed")
    assert "not-a-token" not in json.dumps(entry)


def test_replay_simulate_and_reload_from_the_dashboard_name_the_user(
    hub: tuple[Runtime, TestClient],
) -> None:
    runtime, client = hub
    login(client, token=OPERATOR_TOKEN)
    csrf = page_csrf(client.get("/admin/rules").text)

    client.post("/admin/deliveries/replay", data={"csrf": csrf, "ids": "d-123"})
    entry = newest(runtime, "replay")
    assert (entry["actor"], entry["role"], entry["target"]) == ("oncall", "operator", "d-123")
    assert entry["detail"]["via"] == "dashboard"

    client.post(
        "/admin/rules/simulate",
        data={"csrf": csrf, "source": "", "headers": "", "payload": '{"type": "x.y"}'},
    )
    entry = newest(runtime, "simulate")
    assert (entry["actor"], entry["target"], entry["result"]) == ("oncall", "event", "ok")
    client.post(
        "/admin/rules/simulate",
        data={"csrf": csrf, "source": "", "headers": "", "payload": "not an event"},
    )
    assert newest(runtime, "simulate")["result"] == "failed"

    client.post("/admin/rules/reload", data={"csrf": csrf})
    entry = newest(runtime, "rules.reload")
    assert (entry["actor"], entry["result"]) == ("oncall", "ok")
    assert entry["detail"]["rules"] == len(runtime.rules.current.rules)


def test_api_writes_name_the_token(hub: tuple[Runtime, TestClient]) -> None:
    runtime, client = hub
    assert (
        client.post("/api/v1/replay", json={"ids": ["d-1", "d-2"]}, headers=OPERATOR).status_code
        == 202
    )
    entry = newest(runtime, "replay")
    assert (entry["actor"], entry["role"], entry["target"]) == ("oncall", "operator", "d-1, d-2")
    assert entry["detail"]["via"] == "api"

    client.post("/api/v1/simulate", json={"payload": {"type": "x.y"}}, headers=ADMIN)
    entry = newest(runtime, "simulate")
    assert (entry["actor"], entry["role"], entry["result"]) == ("ops", "admin", "ok")

    assert client.post("/api/v1/rules/reload", headers=ADMIN).status_code == 200
    assert newest(runtime, "rules.reload")["actor"] == "ops"


def test_a_source_token_decision_is_recorded(hub: tuple[Runtime, TestClient]) -> None:
    runtime, client = hub
    login(client, token=ADMIN_TOKEN)
    csrf = page_csrf(client.get("/admin/sources").text)
    client.post(
        "/admin/sources/notices",
        data={"csrf": csrf, "source": "github", "id": "gone", "decision": "reject"},
    )
    entry = newest(runtime, "notice.decide")
    assert (entry["actor"], entry["target"], entry["result"]) == ("ops", "github", "failed")
    assert entry["detail"] == {"decision": "reject", "notice": "gone"}


def test_role_changes_in_the_config_are_recorded_once(hub: tuple[Runtime, TestClient]) -> None:
    runtime, _ = hub
    # Start-up recorded every configured principal as new.
    started = list_audit(runtime.store, AuditFilter(action="role.change", limit=None))
    assert {(e.target, (e.detail or {})["to"]) for e in started} >= {
        ("ops", "admin"),
        ("viewer", "viewer"),
        ("oncall", "operator"),
        ("bob", "viewer"),
    }
    now = {str(e.target): str((e.detail or {})["to"]) for e in started}
    # Same config again: nothing new. bob promoted, viewer removed: two entries.
    assert record_role_changes(runtime, list(now.items())) == 0
    changed = {**now, "bob": "operator"}
    del changed["viewer"]
    assert record_role_changes(runtime, list(changed.items())) == 2
    assert newest(runtime, "role.change")["actor"] == "switchboard.yaml"
    latest = list_audit(runtime.store, AuditFilter(action="role.change", limit=2))
    assert {(e.target, json.dumps(e.detail, sort_keys=True)) for e in latest} == {
        ("bob", '{"from": "viewer", "to": "operator"}'),
        ("viewer", '{"from": "viewer", "to": null}'),
    }


def test_the_api_lists_filters_and_exports_json_lines(hub: tuple[Runtime, TestClient]) -> None:
    _, client = hub
    for _ in range(3):
        client.post("/api/v1/simulate", json={"payload": {"type": "x.y"}}, headers=OPERATOR)
    client.post("/api/v1/rules/reload", headers=ADMIN)

    page = client.get("/api/v1/audit?action=simulate&limit=2", headers=ADMIN).json()
    assert [e["actor"] for e in page["items"]] == ["oncall", "oncall"]
    assert page["next_cursor"]
    rest = client.get(
        f"/api/v1/audit?action=simulate&limit=2&cursor={page['next_cursor']}", headers=ADMIN
    ).json()
    assert len(rest["items"]) == 1
    assert rest["next_cursor"] is None
    by_ops = client.get("/api/v1/audit?actor=ops&since=1h", headers=ADMIN).json()["items"]
    assert [e["action"] for e in by_ops] == ["rules.reload"]
    bad = client.get("/api/v1/audit?action=delete-everything", headers=ADMIN)
    assert bad.status_code == 400

    export = client.get("/api/v1/audit?format=jsonl&action=simulate", headers=ADMIN)
    assert export.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert len(lines) == 3
    assert set(lines[0]) == {
        "id",
        "at",
        "actor",
        "role",
        "action",
        "target",
        "result",
        "address",
        "detail",
    }
    assert client.get("/api/v1/audit", headers=OPERATOR).status_code == 403


def test_the_dashboard_page_shows_and_exports_the_trail_to_admins_only(
    hub: tuple[Runtime, TestClient],
) -> None:
    _, client = hub
    login(client, token=READ_TOKEN)
    assert client.get("/admin/audit").status_code == 403
    assert 'href="/admin/audit"' not in client.get("/admin/").text
    client.cookies.clear()
    login(client, token=ADMIN_TOKEN)
    page = client.get("/admin/audit?action=login")
    assert page.status_code == 200
    assert "viewer" in page.text  # the viewer's login above
    assert "role.change" not in page.text.split("<tbody>")[1]
    export = client.get("/admin/audit.jsonl?action=login")
    assert [json.loads(x)["actor"] for x in export.text.splitlines()] == ["ops", "viewer"]


def test_retention_prunes_old_audit_entries(hub: tuple[Runtime, TestClient]) -> None:
    runtime, client = hub
    client.post("/api/v1/rules/reload", headers=ADMIN)
    before = len(list_audit(runtime.store, AuditFilter(limit=None)))
    assert prune(runtime.store, older_than=0.0).audit == 0
    pruned = prune(runtime.store, older_than=runtime.clock.now().timestamp() + 1)
    assert pruned.audit == before
    assert list_audit(runtime.store, AuditFilter(limit=None)) == []
