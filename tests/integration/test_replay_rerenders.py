"""A delivery that died before it was rendered is rendered again when it is replayed.

The failure users hit: Notion is down when a report's query runs, so its deliveries are
dead with nothing in them. After Notion is back, replaying them from the dead-letter
queue must run the query and send the report, not send an empty message.
"""

from __future__ import annotations

import json
from pathlib import Path

from starlette.testclient import TestClient

from hub.api.operations import replay_now
from hub.app import create_app
from hub.pipeline.rerender import UNRENDERED
from hub.plugins import load_plugins
from hub.runtime import Runtime, build_runtime
from tests.fakes.notion import FAKE_TOKEN, FakeNotion
from tests.support import fixture_path, github_headers, make_settings, wait_until

TASKS_DB = "8e2f6a14-9c3b-4d5e-a1f2-3b4c5d6e7f80"
ISSUE_OPENED = fixture_path("github", "issues", "opened.json").read_bytes()
RULES = """
rules:
  - id: issue-with-open-tasks
    on: github.issues.opened
    query:
      open:
        notion.query:
          database: task
          filter: {property: Status, status: {does_not_equal: Done}}
    actions:
      - log:
          to: inbox
          message: "{{ event.data.entity.title }}: {{ query.open | length }} open tasks"
  - id: broken-template
    on: github.issues.opened
    actions:
      - log:
          to: inbox
          message: "{{ event.data.fields.no_such_field }}"
"""


def _hub(tmp_path: Path, base: str) -> Runtime:
    settings = make_settings(
        tmp_path,
        rules=RULES,
        extra_sources=f"""  notion:
    secret: {{env: TEST_NOTION_SECRET, optional: true}}
    api_token: {{env: TEST_NOTION_TOKEN}}
    api_url: "{base}"
    databases:
      "{TASKS_DB}": {{kind: task}}""",
        environ={"TEST_NOTION_TOKEN": FAKE_TOKEN},
    )
    return build_runtime(settings, load_plugins())


def _inbox(tmp_path: Path) -> list[str]:
    path = tmp_path / "inbox.log"
    lines = path.read_text().splitlines() if path.exists() else []
    return [str(json.loads(line)["message"]) for line in lines]


def test_replaying_a_report_that_died_on_a_notion_outage_runs_the_query_again(
    tmp_path: Path, notion: tuple[FakeNotion, str]
) -> None:
    fake, base = notion
    for _ in range(4):  # every attempt of the query during the outage
        fake.fail_next(503, headers={"Retry-After": "0"})
    runtime = _hub(tmp_path, base)
    store = runtime.store

    with TestClient(create_app(runtime, run_worker=True)) as client:
        response = client.post(
            "/hooks/github",
            content=ISSUE_OPENED,
            headers=github_headers(ISSUE_OPENED, event="issues", delivery="replay-1"),
        )
        assert response.status_code == 202
        wait_until(
            lambda: (
                {d.status for d in store.list_deliveries()} == {"dead"}
                and len(store.list_deliveries()) == 2
            ),
            10,
            "both deliveries died at planning",
        )
        by_rule = {d.rule_id: d for d in store.list_deliveries()}
        report, broken = by_rule["issue-with-open-tasks"], by_rule["broken-template"]
        assert "query 'open'" in (report.last_error or "")
        assert UNRENDERED in report.params
        assert _inbox(tmp_path) == []

        # Notion is back; the admin replays both from the dead-letter queue.
        replay_now(runtime, [report.id, broken.id])
        wait_until(
            lambda: (
                {d.id: d.status for d in store.list_deliveries()}
                == {report.id: "delivered", broken.id: "dead"}
            ),
            10,
            "the report was delivered and the broken template died again",
        )
    runtime.close()

    title = json.loads(ISSUE_OPENED)["issue"]["title"]
    assert _inbox(tmp_path) == [f"{title}: 3 open tasks"]  # sent once, with Notion's data
    sent = store.get_delivery(report.id)
    assert sent is not None
    assert sent.params["message"] == f"{title}: 3 open tasks"  # what was sent is kept
    again = store.get_delivery(broken.id)
    assert again is not None
    assert "rendering it again failed" in (again.last_error or "")
    assert "no_such_field" in (again.last_error or "")
