"""Notion webhooks in, pages fetched from a fake Notion API, diffs routed by rules.

Embedded mode with the real worker: what an admin sees when a task changes in Notion.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import uuid
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from hub.app import create_app
from hub.plugins import load_plugins
from hub.runtime import Runtime, build_runtime
from tests.fakes.notion import FAKE_TOKEN, FakeNotion, notion_fixture
from tests.servers import serve_in_thread
from tests.support import make_settings, wait_until

VERIFICATION_TOKEN = "secret_notion_verification_not_real"
TASKS_DB = "8e2f6a14-9c3b-4d5e-a1f2-3b4c5d6e7f80"
LAUNCH_POST = "153104cd-477e-809d-8dc4-ff2d96ae3090"

MESSAGE = (
    "{{ event.data.entity.id }}|{{ event.data.entity.title }}|"
    "{{ event.data.changes.Status.from }}->{{ event.data.changes.Status.to }}|"
    "{{ event.data.changes | length }}"
)
RULES = f"""
rules:
  - id: task-changed
    on: notion.page.properties_updated
    where: {{entity.kind: task}}
    actions:
      - log:
          to: inbox
          message: "{MESSAGE}"
"""


def _notion_source(api_url: str, window: str) -> str:
    return f"""  notion:
    secret: {{env: SWITCHBOARD_SECRET_NOTION}}
    api_token: {{env: TEST_NOTION_TOKEN}}
    api_url: "{api_url}"
    coalesce_window: {window}
    databases:
      "{TASKS_DB}": {{kind: task}}"""


def _hub(tmp_path: Path, api_url: str, window: str = "0.5s") -> Runtime:
    settings = make_settings(
        tmp_path,
        rules=RULES,
        extra_sources=_notion_source(api_url, window),
        environ={"SWITCHBOARD_SECRET_NOTION": VERIFICATION_TOKEN, "TEST_NOTION_TOKEN": FAKE_TOKEN},
    )
    return build_runtime(settings, load_plugins())


def _webhook(page_id: str, *, n: int) -> bytes:
    """The real page.properties_updated payload, for `page_id`, as Notion's `n`th delivery."""
    payload: dict[str, Any] = copy.deepcopy(
        notion_fixture("webhooks", "page.properties_updated.json")
    )
    payload["id"] = str(uuid.UUID(int=n + 1))
    payload["entity"]["id"] = page_id
    payload["timestamp"] = f"2026-11-21T10:00:{n % 60:02d}.000Z"
    return json.dumps(payload).encode()


def _post(client: TestClient, body: bytes) -> None:
    signature = "sha256=" + hmac.new(VERIFICATION_TOKEN.encode(), body, hashlib.sha256).hexdigest()
    response = client.post(
        "/hooks/notion",
        content=body,
        headers={"X-Notion-Signature": signature, "Content-Type": "application/json"},
    )
    assert response.status_code in (200, 202), response.text


def _inbox(tmp_path: Path) -> list[str]:
    path = tmp_path / "inbox.log"
    lines = path.read_text().splitlines() if path.exists() else []
    return [str(json.loads(line)["message"]) for line in lines]


def _page_fetches(fake: FakeNotion, page_id: str | None = None) -> int:
    wanted = page_id.replace("-", "") if page_id else ""
    return sum(
        1
        for seen in fake.seen
        if seen.path.startswith("/v1/pages/") and wanted in seen.path.replace("-", "")
    )


def test_a_burst_on_one_page_is_one_fetch_and_one_event_with_the_property_diff(
    tmp_path: Path, notion: tuple[FakeNotion, str]
) -> None:
    fake, base = notion
    runtime = _hub(tmp_path, base)
    with TestClient(create_app(runtime, run_worker=True)) as client:
        # First sight of the page: every property is a change from nothing.
        _post(client, _webhook(LAUNCH_POST, n=0))
        wait_until(lambda: len(_inbox(tmp_path)) == 1, 10, "the first event was routed")
        # The task moves on in Notion, and Notion sends five webhooks in a burst.
        fake.put_page(notion_fixture("api", "pages", "launch-post.after.json"))
        for n in range(1, 6):
            _post(client, _webhook(LAUNCH_POST, n=n))
        wait_until(lambda: len(_inbox(tmp_path)) == 2, 10, "the burst became one event")
        # Notion retries one delivery (same id, higher attempt_number): nothing new.
        _post(client, _webhook(LAUNCH_POST, n=3))
        # An edit that changed nothing we can see (or was reverted in the window): no event.
        _post(client, _webhook(LAUNCH_POST, n=9))
        wait_until(lambda: _page_fetches(fake) == 3, 10, "the last webhook was fetched")
        wait_until(lambda: runtime.store.count_events("received") == 0, 5, "all processed")
    runtime.close()

    first, second = _inbox(tmp_path)
    before = notion_fixture("api", "pages", "launch-post.before.json")
    after = notion_fixture("api", "pages", "launch-post.after.json")
    old_status = before["properties"]["Status"]["status"]["name"]
    new_status = after["properties"]["Status"]["status"]["name"]
    assert first.startswith(f"{LAUNCH_POST}|")
    assert f"|None->{old_status}|" in first
    assert f"|{old_status}->{new_status}|" in second
    assert int(second.rsplit("|", 1)[1]) < int(first.rsplit("|", 1)[1])  # only what changed
    assert _page_fetches(fake) == 3  # one per burst (1, 5 and 1 webhooks), not one per webhook
    assert len(_inbox(tmp_path)) == 2


def test_notion_429_is_waited_out_with_its_retry_after(
    tmp_path: Path, notion: tuple[FakeNotion, str]
) -> None:
    fake, base = notion
    fake.rate_limit_next("1")
    runtime = _hub(tmp_path, base, window="0.2s")
    with TestClient(create_app(runtime, run_worker=True)) as client:
        _post(client, _webhook(LAUNCH_POST, n=0))
        wait_until(lambda: len(_inbox(tmp_path)) == 1, 15, "routed after Notion's wait")
    runtime.close()
    statuses = [seen.status for seen in fake.seen if seen.path.startswith("/v1/pages/")]
    assert statuses == [429, 200]


def test_many_pages_never_exceed_notions_three_requests_per_second(
    tmp_path: Path, notion: tuple[FakeNotion, str]
) -> None:
    fake, base = notion
    template = notion_fixture("api", "pages", "launch-post.before.json")
    pages = [str(uuid.UUID(int=0x153104CD477E809D8DC4FF2D96AE0000 + i)) for i in range(9)]
    for page_id in pages:
        fake.put_page({**copy.deepcopy(template), "id": page_id})
    runtime = _hub(tmp_path, base, window="0.2s")
    with TestClient(create_app(runtime, run_worker=True)) as client:
        for n, page_id in enumerate(pages):
            _post(client, _webhook(page_id, n=n))
        wait_until(lambda: len(_inbox(tmp_path)) == len(pages), 30, "every page routed")
    runtime.close()
    times = sorted(seen.at for seen in fake.seen)
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert len(times) == len(pages) + 1  # one fetch per page, one schema read
    assert busiest <= 3, times


WS_A = "7b1e4f52-3c2a-4d8e-9f10-2a6c5e8d9b01"
WS_B = "9c2d5e63-4d3b-4e9f-8a21-3b7d6f9e0c12"
WORKSPACE_RULES = f"""
rules:
  - id: acme-only
    on: notion.page.*
    source: notion/workspace/{WS_A}
    actions:
      - log: {{to: inbox, message: "A {{{{ event.data.entity.id }}}}"}}
  - id: every-workspace
    on: notion.page.*
    actions:
      - log: {{to: inbox, message: "any {{{{ event.source }}}}"}}
"""


def _signed(body: bytes, key: str) -> dict[str, str]:
    signature = "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Notion-Signature": signature, "Content-Type": "application/json"}


def _workspace_webhook(workspace: str, page_id: str, n: int) -> bytes:
    payload = json.loads(_webhook(page_id, n=n))
    payload["workspace_id"] = workspace
    return json.dumps(payload).encode()


def test_two_workspaces_use_their_own_tokens_snapshots_and_rules(tmp_path: Path) -> None:
    fake_a, fake_b = FakeNotion.with_fixtures(), FakeNotion(token="ntn_workspace_b_not_real")
    fake_b.put_page(notion_fixture("api", "pages", "launch-post.after.json"))
    with serve_in_thread(fake_a.app()) as base_a, serve_in_thread(fake_b.app()) as base_b:
        source = f"""  notion:
    secret: {{env: SWITCHBOARD_SECRET_NOTION, optional: true}}
    coalesce_window: 0.2s
    workspaces:
      "{WS_A}":
        api_token: {{env: TOKEN_A}}
        verification_token: {{env: VERIFY_A}}
        api_url: "{base_a}"
        databases: {{"{TASKS_DB}": {{kind: task}}}}
      "{WS_B}":
        api_token: {{env: TOKEN_B}}
        verification_token: {{env: VERIFY_B}}
        api_url: "{base_b}\""""
        settings = make_settings(
            tmp_path,
            rules=WORKSPACE_RULES,
            extra_sources=source,
            environ={
                "TOKEN_A": FAKE_TOKEN,
                "VERIFY_A": "verify-a-not-real",
                "TOKEN_B": "ntn_workspace_b_not_real",
                "VERIFY_B": "verify-b-not-real",
            },
        )
        runtime = build_runtime(settings, load_plugins())
        with TestClient(create_app(runtime, run_worker=True)) as client:
            body_a = _workspace_webhook(WS_A, LAUNCH_POST, 1)
            body_b = _workspace_webhook(WS_B, LAUNCH_POST, 2)
            # Workspace A's token cannot vouch for an event that claims to be B's.
            forged = client.post(
                "/hooks/notion", content=body_b, headers=_signed(body_b, "verify-a-not-real")
            )
            assert forged.status_code == 401
            assert (
                client.post(
                    "/hooks/notion", content=body_a, headers=_signed(body_a, "verify-a-not-real")
                ).status_code
                == 200
            )
            assert (
                client.post(
                    "/hooks/notion", content=body_b, headers=_signed(body_b, "verify-b-not-real")
                ).status_code
                == 200
            )
            wait_until(lambda: len(_inbox(tmp_path)) == 3, 15, "three actions routed")
        runtime.close()
    inbox = sorted(_inbox(tmp_path))
    assert inbox == sorted(
        [f"A {LAUNCH_POST}", f"any notion/workspace/{WS_A}", f"any notion/workspace/{WS_B}"]
    )
    # Each workspace's page was read with its own token, from its own API.
    assert [s.status for s in fake_a.seen if s.path.startswith("/v1/pages/")] == [200]
    assert [s.status for s in fake_b.seen if s.path.startswith("/v1/pages/")] == [200]


PRICING_PAGE = "153104cd-477e-8001-935c-c4b11828dfbd"
LIFECYCLE_RULES = """
rules:
  - id: page-lifecycle
    on: [notion.page.deleted, notion.page.undeleted]
    actions:
      - log:
          to: inbox
          message: >-
            {{ event.type }} {{ event.data.entity.kind }}
            {{ event.data.fields.notion.in_trash }}
"""


def test_a_deleted_and_restored_page_reach_rules_with_the_trash_state(
    tmp_path: Path, notion: tuple[FakeNotion, str]
) -> None:
    fake, base = notion
    settings = make_settings(
        tmp_path,
        rules=LIFECYCLE_RULES,
        extra_sources=_notion_source(base, "0.2s"),
        environ={"SWITCHBOARD_SECRET_NOTION": VERIFICATION_TOKEN, "TEST_NOTION_TOKEN": FAKE_TOKEN},
    )
    runtime = build_runtime(settings, load_plugins())

    def lifecycle(verb: str, n: int) -> bytes:
        payload = json.loads(_webhook(PRICING_PAGE, n=n))
        payload["type"] = f"page.{verb}"
        payload["data"].pop("updated_properties", None)
        return json.dumps(payload).encode()

    with TestClient(create_app(runtime, run_worker=True)) as client:
        fake.put_page(notion_fixture("api", "pages", "pricing-page.in-trash.json"))
        _post(client, lifecycle("deleted", 1))
        wait_until(lambda: len(_inbox(tmp_path)) == 1, 10, "the deletion was routed")
        fake.put_page(notion_fixture("api", "pages", "pricing-page.json"))
        _post(client, lifecycle("undeleted", 2))
        wait_until(lambda: len(_inbox(tmp_path)) == 2, 10, "the restore was routed")
    runtime.close()
    assert _inbox(tmp_path) == [
        "notion.page.deleted task True",
        "notion.page.undeleted task False",
    ]
