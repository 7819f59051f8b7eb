"""Task automation (#20) against the fake Notion API at the transport: the shipped
rules/task-automation.yaml and rules/recurring-tasks.yaml read Notion through their
`query:` steps (paginated, rate-limited, 429 with Retry-After), render, and the Notion
connector writes the assignee back and comments why."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from connectors.base import ConnectorEnv, Destination, RenderedAction
from connectors.notion import NotionConnector
from hub.clock import FakeClock
from hub.config.people import directory_from_config
from hub.events import Actor, Entity, Event
from hub.notion.query import page_item
from hub.pipeline.queries import run_queries
from hub.plugins import load_plugins
from hub.rules import Rule, load_ruleset
from hub.rules.matcher import render_actions
from hub.rules.templates import TemplateEngine
from hub.secrets import Secret
from hub.sources.base import EnrichContext
from hub.sources.notion import NotionSource
from hub.store import open_store
from hub.store.snapshots import StoreSnapshots
from tests.connector_support import delivery_context
from tests.fakes.notion import FAKE_TOKEN, FakeNotion, notion_fixture

REPO = Path(__file__).resolve().parents[2]
TASKS_DB = "8e2f6a14-9c3b-4d5e-a1f2-3b4c5d6e7f80"
API = "http://notion.test"
PLUGINS = load_plugins()
ADA = "c7c11cca-1d73-471d-9b6e-bdef51470190"
GRACE = "3f4e5d6c-7b8a-4a9b-8c7d-6e5f4a3b2c1d"
PEOPLE = {"Ada Lovelace": ADA, "Grace Hopper": GRACE}
MONDAY = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # 09:00 in Berlin


def _directory() -> Any:
    config = yaml.safe_load((REPO / "switchboard.example.yaml").read_text(encoding="utf-8"))
    directory, problems = directory_from_config(config.get("people"), config.get("roles"))
    assert problems == []
    return directory


def _ruleset(name: str) -> dict[str, Rule]:
    destinations = {
        "team-bot": Destination(name="team-bot", connector="discord", options={}),
        "project-updates": Destination(name="project-updates", connector="discord", options={}),
        "milestone-updates": Destination(name="milestone-updates", connector="discord"),
        "team-mail": Destination(name="team-mail", connector="email", options={}),
        "notion": Destination(name="notion", connector="notion", options={}),
    }
    ruleset = load_ruleset(
        REPO / "rules" / name,
        connectors=PLUGINS.connectors,
        destinations=destinations,
        engine=TemplateEngine(),
        people=_directory(),
    )
    return {rule.id: rule for rule in ruleset.rules}


def _page(
    n: int,
    title: str,
    status: str,
    edited: datetime,
    who: list[str] = (),
    estimate: float | None = None,
) -> dict[str, Any]:
    page: dict[str, Any] = copy.deepcopy(notion_fixture("api", "pages", "pricing-page.json"))
    page["id"] = f"2a1104cd-477e-809d-8dc4-{n:012d}"
    page["url"] = f"https://www.notion.so/{page['id'].replace('-', '')}"
    page["in_trash"] = page["archived"] = False
    props = page["properties"]
    props["Name"]["title"] = [{"type": "text", "text": {"content": title}, "plain_text": title}]
    props["Status"]["status"] = {"id": f"s-{status}", "name": status, "color": "default"}
    props["Assignee"]["people"] = [
        {"object": "user", "id": PEOPLE[name], "name": name, "type": "person",
         "person": {"email": f"{name.split()[0].lower()}@example.com"}}
        for name in who
    ]  # fmt: skip
    props["Estimate"]["number"] = estimate
    page["last_edited_time"] = edited.isoformat().replace("+00:00", "Z")
    return page


def _fake(*pages: dict[str, Any], filler: int = 0, status: str = "Not started") -> FakeNotion:
    fake = FakeNotion.with_fixtures()
    fake.pages.clear()
    for page in pages:
        fake.put_page(page)
    for n in range(filler):  # more than one page of results: the query follows cursors
        fake.put_page(_page(900 + n, f"Backlog item {n}", status, MONDAY - timedelta(hours=1)))
    return fake


class _Budget:
    def __init__(self) -> None:
        self.waits = 0

    async def throttle(self, key: str, limits: Any) -> None:
        self.waits += 1


def _run(
    fake: FakeNotion, rule: Rule, document: Mapping[str, Any], clock: FakeClock
) -> list[RenderedAction]:
    """The rule's query steps against the fake, then its actions rendered as the worker does."""
    source = NotionSource(api_token=Secret(FAKE_TOKEN), api_url=API, kinds={TASKS_DB: "task"})
    budget = _Budget()

    async def go() -> dict[str, Any]:
        transport = httpx.ASGITransport(app=fake.app())
        async with httpx.AsyncClient(transport=transport, base_url=API) as http:
            ctx = EnrichContext(
                clock=clock,
                http=http,
                snapshots=StoreSnapshots(open_store("sqlite://")),
                throttle=budget.throttle,
            )
            return await run_queries(
                rule, document, store=open_store("sqlite://"), sources={"notion": source}, ctx=ctx
            )

    results = asyncio.run(go())
    assert budget.waits >= 1  # every request passes the shared Notion budget
    rendered = [r for _, r in render_actions(rule, document, extra={"query": results})]
    assert all(isinstance(r, RenderedAction) for r in rendered), rendered
    return [r for r in rendered if isinstance(r, RenderedAction)]


def _tick(rule: Rule, at: datetime) -> dict[str, Any]:
    local = at.astimezone(rule.schedule.zone)  # type: ignore[union-attr]
    return Event(
        id=f"tick-{rule.id}-{at.isoformat()}",
        source="schedule",
        type=f"schedule.{rule.id}",
        subject=rule.id,
        time=at,
        entity=Entity(kind="schedule", id=rule.id, url=None, title=rule.id),
        actor=Actor(),
        changes={},
        fields={
            "rule": rule.id,
            "tick": at.isoformat().replace("+00:00", "Z"),
            "date": local.date().isoformat(),
            "timezone": rule.schedule.timezone,  # type: ignore[union-attr]
            "cron": rule.schedule.cron,  # type: ignore[union-attr]
        },
    ).to_dict()


def test_stalled_tasks_are_reported_once_per_period_then_escalated_and_leave_when_moved() -> None:
    rule = _ruleset("task-automation.yaml")["stalled-tasks"]  # 09:00 Berlin, Monday-Friday
    # Last edited Tuesday 11-17 09:00 UTC: stalled (3 days) from Friday 09:00 UTC, after
    # Friday's tick, so Monday's tick reports it; twice as long on Monday 09:00 UTC, after
    # Monday's tick, so Tuesday's tick escalates it.
    edited = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)
    launch = _page(1, "Write launch post", "In progress", edited, ["Grace Hopper"])
    fresh = _page(2, "Fresh work", "In progress", MONDAY - timedelta(days=1), ["Ada Lovelace"])
    fake = _fake(launch, fresh, filler=120, status="In progress")
    fake.rate_limit_next("2")  # Notion is busy once: the query waits as told and goes on
    clock = FakeClock(MONDAY)

    def sent(day: int) -> list[tuple[str, str]]:
        actions = _run(fake, rule, _tick(rule, MONDAY + timedelta(days=day)), clock)
        return [(a.params["user"], a.params["content"].split("**")[1]) for a in actions]

    assert sent(0) == [("576377900236931080", "Write launch post")]  # Grace, the assignee
    assert clock.now() - MONDAY == timedelta(seconds=2)  # Retry-After was honoured
    assert [s.status for s in fake.seen].count(429) == 1
    queries = [s for s in fake.seen if s.path.endswith("/query")]
    assert [s.status for s in queries] == [200, 200]  # 122 pages: two pages of results
    for page_id in [p for p, page in fake.pages.items() if "Backlog" in str(page["properties"])]:
        del fake.pages[page_id]  # the busy backlog is done; two tasks are left
    # A re-run of the same tick renders the same deliveries (same event, same keys).
    assert sent(0) == [("576377900236931080", "Write launch post")]

    assert sent(1) == [
        ("576377900236931080", "Write launch post"),  # the second period: Grace again...
        ("576377900236931079", "Write launch post"),  # ...and the project manager, Ada
    ]
    assert sent(2) == [("576377900236931079", "Fresh work")]  # 3 days on Wednesday: Ada's
    assert sent(3) == []  # nothing new on Thursday

    # A task that moves again leaves the stalled set.
    moved = copy.deepcopy(launch)
    moved["properties"]["Status"]["status"]["name"] = "In review"
    moved["last_edited_time"] = "2026-11-26T15:00:00Z"
    fake.put_page(moved)
    assert sent(4) == []
    assert sent(7) == [
        ("576377900236931079", "Fresh work"),  # its second period...
        ("576377900236931080", "Write launch post"),  # stalled in review (2 days)
        ("576377900236931079", "Fresh work"),  # ...so the project manager hears of it
    ]


def test_the_daily_summary_lists_the_stalled_tasks() -> None:
    rule = _ruleset("summaries.yaml")["daily-summary"]
    launch = _page(
        1, "Write launch post", "In progress", MONDAY - timedelta(days=5), ["Grace Hopper"]
    )
    review = _page(2, "Review docs", "In review", MONDAY - timedelta(hours=20), ["Ada Lovelace"])
    fake = _fake(launch, review)
    (summary,) = _run(fake, rule, _tick(rule, MONDAY), FakeClock(MONDAY))
    assert summary.params["content"].endswith(
        "**Stalled**\n• Write launch post: In progress for 5 days (Grace Hopper)"
    )


def _created_event(page: Mapping[str, Any]) -> dict[str, Any]:
    """`notion.page.created` as the Notion source enriches it (fields from the page)."""
    item = page_item(page, {TASKS_DB: "task"})
    return Event(
        id="created-1",
        source="notion/workspace/acme",
        type="notion.page.created",
        subject=f"page/{page['id']}",
        time=MONDAY,
        entity=Entity(kind="task", id=page["id"], url=page["url"], title=item["title"]),
        actor=Actor(),
        changes={},
        fields=item["fields"],
    ).to_dict()


def test_a_new_unassigned_task_is_assigned_by_workload_written_back_with_a_comment() -> None:
    rules = _ruleset("task-automation.yaml")
    rule = rules["assign-new-task"]
    new = _page(10, "Plan offsite", "Not started", MONDAY)
    fake = _fake(
        new,
        _page(11, "a", "In progress", MONDAY, ["Ada Lovelace"]),
        _page(12, "b", "Not started", MONDAY, ["Ada Lovelace", "Grace Hopper"]),
        _page(13, "c", "Done", MONDAY, ["Grace Hopper"]),  # done: not open work
        _page(14, "d", "Done", MONDAY, ["Grace Hopper"]),
        filler=110,
    )
    document = _created_event(new)
    assert rule.when is not None
    update, comment = _run(fake, rule, document, FakeClock(MONDAY))

    async def send() -> None:
        destination = Destination(
            name="notion",
            connector="notion",
            options={"token": Secret(FAKE_TOKEN), "api_url": API},
        )
        transport = httpx.ASGITransport(app=fake.app())
        async with httpx.AsyncClient(transport=transport, base_url=API) as http:
            connector = NotionConnector(ConnectorEnv(http=http, base_dir=REPO))
            for n, action in enumerate((update, comment)):
                ctx = delivery_context(
                    destination,
                    now=MONDAY,
                    rule_id=rule.id,
                    delivery_id=f"d{n}",
                    event_id="created-1",
                    idempotency_key=f"{n}" * 64,
                )
                result = await connector.send(action, ctx)
                assert result.outcome == "ok", result

    asyncio.run(send())
    written = [w for w in fake.writes if w[0] == "PATCH"]
    assert written
    assert written[-1][2]["properties"]["Assignee"]["people"] == [{"object": "user", "id": GRACE}]
    (posted,) = fake.comments
    assert posted["rich_text"][0]["plain_text"] == (
        "🤖 Assigned to Grace Hopper: least open work (1 open task; Ada Lovelace 2 open tasks)."
    )


def test_a_recurring_task_is_skipped_while_the_previous_occurrence_is_open() -> None:
    rule = _ruleset("recurring-tasks.yaml")["weekly-report-task"]
    last_week = _page(20, "Weekly report 2026-11-16", "In progress", MONDAY - timedelta(days=7))
    fake = _fake(last_week, filler=5)
    assert _run(fake, rule, _tick(rule, MONDAY), FakeClock(MONDAY)) == []

    done = copy.deepcopy(last_week)
    done["properties"]["Status"]["status"]["name"] = "Done"
    fake.put_page(done)
    (create,) = _run(fake, rule, _tick(rule, MONDAY), FakeClock(MONDAY))
    assert (create.operation, create.params["title"]) == ("create", "Weekly report 2026-11-23")
