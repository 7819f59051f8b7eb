"""Duplicate tasks (#20) against the fake Notion API: a burst of created pages is enriched
with `data.duplicates` from the stored open-task index, at a bounded number of requests."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from hub.clock import FakeClock
from hub.events import Event
from hub.notion.task_index import DuplicateSettings, index_key
from hub.secrets import Secret
from hub.sources.base import EnrichContext, NormalizeContext, RawEvent
from hub.sources.notion import NotionSource
from hub.store import open_store
from hub.store.snapshots import StoreSnapshots
from tests.fakes.notion import FAKE_TOKEN, FakeNotion, notion_fixture

TASKS_DB = "8e2f6a14-9c3b-4d5e-a1f2-3b4c5d6e7f80"
LAUNCH_POST = "153104cd-477e-809d-8dc4-ff2d96ae3090"


async def _no_wait(key: str, limits: Sequence[tuple[int, float]]) -> None:
    return None


def _page(page_id: str, title: str) -> dict[str, Any]:
    page: dict[str, Any] = copy.deepcopy(notion_fixture("api", "pages", "launch-post.before.json"))
    page["id"] = page_id
    page["url"] = f"https://www.notion.so/{page_id.replace('-', '')}"
    page["properties"]["Name"]["title"] = [
        {"type": "text", "text": {"content": title}, "plain_text": title}
    ]
    page["properties"]["Notes"]["rich_text"] = []
    return page


def _created(source: NotionSource, page_id: str, n: int) -> Event:
    payload: dict[str, Any] = copy.deepcopy(notion_fixture("webhooks", "page.created.json"))
    payload["id"] = str(uuid.UUID(int=n + 1))
    payload["entity"]["id"] = page_id
    raw = RawEvent(
        id=f"e{n}",
        source="notion",
        provider_delivery_id=payload["id"],
        headers={},
        body=json.dumps(payload).encode(),
        received_at=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
    )
    [event] = source.normalize(raw, NormalizeContext(clock=FakeClock()))
    return event


def test_a_burst_of_100_new_tasks_costs_one_fetch_each_plus_one_index_refresh(
    tmp_path: Path,
) -> None:
    # Given the fake Notion with the fixture tasks (one is "Write launch post", open)
    fake = FakeNotion.with_fixtures()
    fresh = [str(uuid.UUID(int=10_000 + n)) for n in range(100)]
    for n, page_id in enumerate(fresh):
        fake.put_page(_page(page_id, f"Quarterly vendor review number {n} for team {n * 7}"))
    copycat = str(uuid.UUID(int=20_000))
    fake.put_page(_page(copycat, "Write the launch post"))
    source = NotionSource(
        kinds={TASKS_DB: "task"},
        api_token=Secret(FAKE_TOKEN),
        api_url="http://notion.test",
        duplicates=DuplicateSettings(threshold=0.6, refresh_s=3600),
    )
    store = open_store(f"sqlite:///{tmp_path / 'hub.db'}")
    snapshots = StoreSnapshots(store)

    async def burst() -> list[list[Event]]:
        transport = httpx.ASGITransport(app=fake.app())
        async with httpx.AsyncClient(transport=transport, base_url="http://notion.test") as http:
            ctx = EnrichContext(
                clock=FakeClock(), http=http, snapshots=snapshots, throttle=_no_wait
            )
            thin = [_created(source, p, n) for n, p in enumerate([*fresh, copycat])]
            # When 101 pages are created at once and enriched concurrently
            return await asyncio.gather(*(source.enrich([e], ctx) for e in thin))

    enriched = [events[0] for events in asyncio.run(burst())]

    # Then the look-alike of an open task carries it as a likely duplicate...
    last = enriched[-1].to_dict()["data"]
    assert [d["id"] for d in last["duplicates"]] == [LAUNCH_POST]
    assert last["duplicates"][0]["score"] >= 0.6
    # ...the others differ by their numbers and are not duplicates of each other
    assert all(e.duplicates == () for e in enriched[:-1])
    # and Notion saw one fetch per page, one schema read and one index refresh, not a
    # database query per new task.
    pages = [s for s in fake.seen if s.path.startswith("/v1/pages/")]
    others = [s.path for s in fake.seen if not s.path.startswith("/v1/pages/")]
    assert len(pages) == 101
    queries = [p for p in others if p.endswith("/query")]
    assert 1 <= len(queries) <= 2, others  # 104 tasks at 100 per request
    assert len(others) <= 5, others
    # The index in the store now holds every open task, the new ones included.
    index = snapshots.get(index_key(TASKS_DB))
    assert index is not None
    assert {copycat, *fresh} <= set(index["tasks"])
    store.close()
