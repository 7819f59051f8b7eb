"""Categories (#20) on a task fetched from the fake Notion API: the enriched event gets
`data.category` from the config and a rule routes it
(a rule on `category: bug` matches only when categories are applied)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from connectors.base import Destination
from connectors.log import LogConnector
from hub.clock import FakeClock
from hub.rules import load_ruleset
from hub.rules.categories import build_categories, with_category
from hub.rules.templates import TemplateEngine
from hub.rules.testing import dry_run
from hub.secrets import Secret
from hub.sources.base import EnrichContext
from hub.sources.notion import NotionSource
from hub.store import open_store
from hub.store.snapshots import StoreSnapshots
from tests.fakes.notion import FAKE_TOKEN, FakeNotion
from tests.integration.test_duplicate_tasks import TASKS_DB, _created, _no_wait, _page


def test_a_task_fetched_from_notion_is_categorized_and_routed_by_category(
    tmp_path: Path,
) -> None:
    fake = FakeNotion.with_fixtures()
    page_id = "2a1104cd-477e-809d-8dc4-ff2d96ae3003"
    fake.put_page(_page(page_id, "App crashes when opening settings"))
    source = NotionSource(
        kinds={TASKS_DB: "task"}, api_token=Secret(FAKE_TOKEN), api_url="http://notion.test"
    )
    store = open_store(f"sqlite:///{tmp_path / 'hub.db'}")

    async def enrich() -> dict[str, object]:
        transport = httpx.ASGITransport(app=fake.app())
        async with httpx.AsyncClient(transport=transport, base_url="http://notion.test") as http:
            ctx = EnrichContext(
                clock=FakeClock(), http=http, snapshots=StoreSnapshots(store), throttle=_no_wait
            )
            [event] = await source.enrich([_created(source, page_id, 0)], ctx)
            return event.to_dict()

    document = asyncio.run(enrich())
    store.close()
    categories = build_categories(
        [{"name": "bug", "keywords": ["crash"]}, {"name": "tasks", "databases": ["other-db"]}]
    )
    categorized = with_category(document, categories)
    assert categorized["data"]["category"] == "bug"

    # The rule file is read as the worker reads it (the log connector stands in for
    # Discord: rules/task-hygiene.yaml itself runs under `switchboard rules test`).
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n"
        "  - id: new-bug-task\n"
        "    on: notion.page.created\n"
        "    where: {entity.kind: task, category: bug}\n"
        "    actions:\n"
        '      - log: {to: inbox, message: "bug: {{ event.data.entity.title }}"}\n'
    )
    ruleset = load_ruleset(
        rules,
        connectors={"log": LogConnector},
        destinations={"inbox": Destination(name="inbox", connector="log")},
        engine=TemplateEngine(),
    )
    verdicts = dry_run(ruleset, document, categories=categories)
    assert [v.actions for v in verdicts if v.matched] == [
        [
            {
                "rule": "new-bug-task",
                "log": {"to": "inbox", "message": "bug: App crashes when opening settings"},
            }
        ]
    ]
    assert not [v for v in dry_run(ruleset, document) if v.matched]  # no categories: no match
