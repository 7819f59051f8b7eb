"""Task intake end to end: a list posted to /intake/{name}, rules on `intake.<name>`,
pages created in a fake Notion (the real page and error shapes, 3 requests/s with 429s)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from hub.app import create_app
from hub.config import load_settings
from hub.plugins import load_plugins
from hub.runtime import Runtime, build_runtime
from tests.fakes.notion import FAKE_TOKEN, FakeNotion
from tests.servers import serve_in_thread
from tests.support import config_with_rules, wait_until

TASKS_SOURCE = "c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f"
ADMIN_TOKEN = "intake-admin-token-0123456789"
READ_TOKEN = "intake-read-token-0123456789"
INTAKE_TOKEN = "intake-only-token-0123456789"
RULES = f"""
rules:
  - id: launch-intake
    on: intake.launch
    actions:
      - notion.create:
          workspace: notion
          data_source: {TASKS_SOURCE}
          title: "{{{{ event.data.fields.title }}}}"
          properties:
            Due: "{{{{ event.data.fields.due or '' }}}}"
            Tags: "{{{{ event.data.fields.labels }}}}"
            Notes: "line {{{{ event.data.fields.line }}}}: {{{{ event.data.fields.assignee }}}}"
"""


def _hub(tmp_path: Path, api_url: str) -> Runtime:
    config = config_with_rules(
        tmp_path,
        RULES,
        f"""
store: {{url: "sqlite:///{tmp_path / "hub.db"}"}}
broker: {{url: embedded}}
worker: {{threads: 4, lease_seconds: 60}}
sources:
  intake: {{secret: {{env: TEST_INTAKE_TOKEN}}}}
destinations:
  notion:
    connector: notion
    token: {{env: TEST_NOTION_TOKEN}}
    api_url: "{api_url}"
admin:
  tokens:
    - {{name: ops, role: admin, token: {{env: TEST_ADMIN_TOKEN}}}}
    - {{name: viewer, role: read, token: {{env: TEST_READ_TOKEN}}}}
""",
        name="intake.yaml",
    )
    env = {
        "TEST_NOTION_TOKEN": FAKE_TOKEN,
        "TEST_ADMIN_TOKEN": ADMIN_TOKEN,
        "TEST_READ_TOKEN": READ_TOKEN,
        "TEST_INTAKE_TOKEN": INTAKE_TOKEN,
    }
    return build_runtime(load_settings(config, environ=env, plugins=load_plugins()), load_plugins())


@pytest.fixture
def notion_limited() -> Iterator[tuple[FakeNotion, str]]:
    """The fake Notion enforcing its 3 requests/s per integration (429 + Retry-After)."""
    fake = FakeNotion.with_fixtures()
    fake.rate_per_s = 3.0
    with serve_in_thread(fake.app()) as base:
        yield fake, base


AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _created_titles(fake: FakeNotion) -> list[str]:
    return sorted(
        body["properties"]["Name"]["title"][0]["text"]["content"]
        for method, _, body in fake.writes
        if method == "POST"
    )


def test_a_markdown_list_is_previewed_then_created_once_with_every_bad_line_explained(
    tmp_path: Path, notion_limited: tuple[FakeNotion, str]
) -> None:
    fake, base = notion_limited
    runtime = _hub(tmp_path, base)
    text = (Path(__file__).parent.parent / "fixtures" / "intake" / "launch.md").read_bytes()
    with TestClient(create_app(runtime, run_worker=True)) as client:
        preview = client.post("/intake/launch?dry_run=1", content=text, headers=AUTH)
        assert preview.status_code == 200, preview.text
        doc = preview.json()
        assert doc["format"] == "markdown"
        assert [(t["line"], t["title"], t["new"]) for t in doc["tasks"]] == [
            (3, "Write release notes", True),
            (4, "Update pricing page", True),
        ]
        assert doc["tasks"][0]["assignee"] == "alice"
        assert doc["tasks"][0]["due"] == "2026-12-10"
        assert doc["tasks"][1]["labels"] == ["web", "marketing"]
        assert [(r["line"], r["reason"].split(":")[0]) for r in doc["rejected"]] == [
            (5, "already checked off"),
            (6, "not a list item"),
            (7, "no title"),
            (8, "due date '2026-12-32' is not a date; write due"),
            (9, "same task as line 3"),
        ]
        assert runtime.store.count_events() == 0  # a preview stores nothing

        sent = client.post("/intake/launch", content=text, headers=AUTH)
        assert sent.status_code == 202, sent.text
        assert sent.json()["new"] == 2
        wait_until(lambda: len(_created_titles(fake)) == 2, 10, "both pages were created")

        again = client.post("/intake/launch", content=text, headers=AUTH)
        assert again.json()["new"] == 0
        assert again.json()["already_sent"] == 2
        wait_until(lambda: runtime.store.count_events("received") == 0, 5, "all processed")
    runtime.close()

    assert _created_titles(fake) == ["Update pricing page", "Write release notes"]
    first = next(b for m, _, b in fake.writes if "release" in str(b))
    assert first["parent"] == {"type": "data_source_id", "data_source_id": TASKS_SOURCE}
    assert first["properties"]["Due"] == {"date": {"start": "2026-12-10"}}
    assert first["properties"]["Tags"] == {"multi_select": [{"name": "docs"}]}
    assert first["properties"]["Notes"]["rich_text"][0]["text"]["content"] == "line 3: alice"
    assert fake.rate_limited() == 0


def test_the_intake_needs_a_writing_token_and_a_rule_for_the_name(
    tmp_path: Path, notion: tuple[FakeNotion, str]
) -> None:
    _, base = notion
    runtime = _hub(tmp_path, base)
    with TestClient(create_app(runtime, run_worker=False)) as client:
        assert client.post("/intake/launch", content=b"- [ ] x").status_code == 401
        bad = client.post("/intake/launch", content=b"x", headers={"Authorization": "Bearer no"})
        assert bad.status_code == 401
        own = {"Authorization": f"Bearer {INTAKE_TOKEN}"}
        dry = client.post("/intake/launch?dry_run=1", content=b"- [ ] x", headers=own)
        assert dry.status_code == 200, dry.text  # the intake's own token
        read = {"Authorization": f"Bearer {READ_TOKEN}"}
        assert client.post("/intake/launch", content=b"x", headers=read).status_code == 403
        unknown = client.post("/intake/sales", content=b"x", headers=AUTH)
        assert unknown.status_code == 404
        assert unknown.json()["code"] == "unknown_intake"
        assert "intake.sales" in unknown.json()["message"]
        broken = client.post("/intake/launch?format=json", content=b"[1,", headers=AUTH)
        assert broken.status_code == 422
        assert broken.json()["code"] == "unreadable_list"
    runtime.close()


def test_a_thousand_line_list_is_paced_by_the_delivery_engine_without_429s(
    tmp_path: Path, notion_limited: tuple[FakeNotion, str]
) -> None:
    fake, base = notion_limited
    runtime = _hub(tmp_path, base)
    text = "\n".join(f"Task number {n} #docs" for n in range(1000)).encode()
    with TestClient(create_app(runtime, run_worker=True)) as client:
        started = time.monotonic()
        sent = client.post("/intake/launch?format=text", content=text, headers=AUTH)
        # The handler only stores the tasks: no Notion call is made in the request.
        assert sent.status_code == 202, sent.text
        assert sent.json()["new"] == 1000
        assert time.monotonic() - started < 5
        assert runtime.store.count_events() == 1000
        # Pages go out at Notion's pace: watch the engine for a few seconds of sends.
        wait_until(lambda: len(fake.writes) >= 10, 15, "ten pages were created")
        writes = len(fake.writes)
    runtime.close()

    seen = [s.at for s in fake.seen]
    span = seen[-1] - seen[0]
    assert fake.rate_limited() == 0  # not one 429: the engine kept to the budget
    assert len(seen) <= 3 * span + 4  # 3 requests/s on average, the fake's burst at most
    assert writes < 1000  # still going: paced, not sent in one rush
