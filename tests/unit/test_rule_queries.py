"""Rules' `query:` steps: Notion database queries against the fake Notion API, the store's
history, the digest filters, and what a failing query does to a rule's deliveries."""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors._discord_message import CONTENT_LIMIT, build_message
from connectors.base import Destination
from hub.clock import FakeClock
from hub.errors import ConfigErrors
from hub.events import Actor, Entity, Event
from hub.notion.query import page_item
from hub.pipeline.http import make_client
from hub.pipeline.process import process_event
from hub.pipeline.queries import QueryRun, query_store, run_queries
from hub.plugins import load_plugins
from hub.rules import Rule, load_ruleset
from hub.rules.digest import assigned_to, completion, count_by, progress_bar, tally
from hub.rules.templates import TemplateEngine
from hub.rules.testing import dry_run
from hub.secrets import Secret
from hub.sources.base import EnrichContext, QueryFailed, RetryLater, Source
from hub.sources.notion import NotionSource, Workspace
from hub.sources.schedule import ScheduleSource, tick_body
from hub.store import NewInbound, Store, open_store
from hub.store.snapshots import StoreSnapshots
from tests.connector_support import delivery_context
from tests.fakes.notion import FAKE_TOKEN, FakeNotion, notion_fixture

PLUGINS = load_plugins()
TASKS_DB = "8e2f6a14-9c3b-4d5e-a1f2-3b4c5d6e7f80"
TASKS_DS = "c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f"
KINDS = {TASKS_DB: "task"}
MONDAY = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
FIXTURE_PAGES = ("launch-post.before", "pricing-page", "release-notes")


def _fixture_pages() -> list[dict[str, Any]]:
    return [notion_fixture("api", "pages", f"{name}.json") for name in FIXTURE_PAGES]


@pytest.fixture
def notion(module_notion: tuple[FakeNotion, str]) -> tuple[FakeNotion, str]:
    fake, url = module_notion
    fake.script.clear()
    fake.seen.clear()
    fake.pages.clear()
    for page in _fixture_pages():
        fake.put_page(page)
    return fake, url


class _Budget:
    """Counts budget waits: every Notion request must pass through one."""

    def __init__(self) -> None:
        self.waits: list[str] = []

    async def throttle(self, key: str, limits: Sequence[tuple[int, float]]) -> None:
        self.waits.append(key)


def _query(
    url: str,
    params: dict[str, Any],
    *,
    budget: _Budget | None = None,
    source: NotionSource | None = None,
) -> list[dict[str, Any]]:
    source = source or NotionSource(
        api_token=Secret(FAKE_TOKEN, origin="test"), api_url=url, kinds=KINDS
    )

    async def run() -> list[dict[str, Any]]:
        async with make_client(timeout_s=5) as http:
            ctx = EnrichContext(
                clock=FakeClock(MONDAY),
                http=http,
                snapshots=StoreSnapshots(open_store("sqlite://")),
                throttle=(budget or _Budget()).throttle,
            )
            return await source.query(params, ctx)

    return asyncio.run(run())


# --- notion.query against the fake Notion API ---------------------------------------------


def test_a_filtered_sorted_query_returns_pages_flattened_like_event_fields(
    notion: tuple[FakeNotion, str],
) -> None:
    fake, url = notion
    budget = _Budget()

    tasks = _query(
        url,
        {
            "database": "task",  # a kind, resolved through the source's databases
            "filter": {"property": "Status", "status": {"does_not_equal": "Blocked"}},
            "sorts": [{"property": "Due", "direction": "ascending"}],
        },
        budget=budget,
    )

    by_title = {t["title"]: t for t in tasks}
    pages = {page_item(p, KINDS)["title"]: p for p in _fixture_pages()}
    statuses = {t: p["properties"]["Status"]["status"]["name"] for t, p in pages.items()}
    assert "Blocked" in statuses.values()
    assert set(by_title) == {t for t, s in statuses.items() if s != "Blocked"}
    # Notion sorts empty dates last; the rest ascending.
    dues = [t["fields"]["Due"] for t in tasks]
    assert dues == sorted(d for d in dues if d) + [None] * dues.count(None)
    launch = by_title["Write launch post"]
    assert launch["kind"] == "task"
    assert launch["fields"]["Status"] == "In progress"
    assert launch["fields"]["Assignee"]
    assert launch["url"].startswith("https://www.notion.so/")
    # One database read (legacy object: queried directly), one query page, each budgeted.
    assert [s.path for s in fake.seen] == [
        f"/v1/databases/{TASKS_DB}",
        f"/v1/databases/{TASKS_DB}/query",
    ]
    assert len(budget.waits) == 2
    assert len(set(budget.waits)) == 1


@contextmanager
def _with_data_sources(fake: FakeNotion) -> Iterator[None]:
    """The tasks database as API version 2025-09-03 shows it (its data sources instead of
    properties) for the block; the shared fake's own shape again afterwards."""
    key = TASKS_DB.replace("-", "")
    database = notion_fixture("api", "databases", "tasks.json")
    fake.databases[key] = {
        **{k: v for k, v in database.items() if k != "properties"},
        "data_sources": [{"id": TASKS_DS, "name": "Tasks"}],
    }
    try:
        yield
    finally:
        fake.databases[key] = database


def test_a_database_with_data_sources_is_queried_through_its_first_data_source(
    notion: tuple[FakeNotion, str],
) -> None:
    fake, url = notion
    with _with_data_sources(fake):
        tasks = _query(url, {"database": TASKS_DB})

    assert len(tasks) == 3
    assert [(s.path, s.notion_version) for s in fake.seen][-1] == (
        f"/v1/data_sources/{TASKS_DS}/query",
        "2025-09-03",
    )


def test_results_are_followed_across_pages_up_to_the_limit(
    notion: tuple[FakeNotion, str],
) -> None:
    fake, url = notion
    template = notion_fixture("api", "pages", "release-notes.json")
    for n in range(250):
        page = copy.deepcopy(template)
        page["id"] = str(uuid.UUID(int=n + 1))
        page["created_time"] = f"2026-11-{1 + n // 24:02d}T{n % 24:02d}:00:00.000Z"
        fake.put_page(page)

    tasks = _query(url, {"data_source": TASKS_DS, "limit": 230})

    assert len({t["id"] for t in tasks}) == len(tasks) == 230
    queries = [s for s in fake.seen if s.path.endswith("/query")]
    assert len(queries) == 3  # 100 + 100 + 30, following next_cursor


def test_a_filter_notion_rejects_is_a_query_failure_with_notions_message(
    notion: tuple[FakeNotion, str],
) -> None:
    _, url = notion
    with pytest.raises(QueryFailed, match="Could not find property with name or id: Stage"):
        _query(
            url,
            {"data_source": TASKS_DS, "filter": {"property": "Stage", "select": {"equals": "x"}}},
        )


def test_a_rate_limited_query_asks_to_retry_after_notions_wait(
    notion: tuple[FakeNotion, str],
) -> None:
    fake, url = notion
    fake.rate_limit_next("3")
    with pytest.raises(RetryLater) as exc:
        _query(url, {"data_source": TASKS_DS})
    assert exc.value.after_s == 3.0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "exactly one of `database`"),
        ({"database": "task", "data_source": TASKS_DS}, "exactly one of `database`"),
        ({"data_source": TASKS_DS, "limit": 0}, "`limit` must be between 1 and 1000"),
        ({"data_source": TASKS_DS, "filter": "Status = Done"}, "`filter` must be an object"),
        ({"database": "not-an-id"}, "is not a Notion id"),
    ],
)
def test_a_step_that_cannot_work_says_what_to_fix(
    notion: tuple[FakeNotion, str], params: dict[str, Any], message: str
) -> None:
    _, url = notion
    with pytest.raises(QueryFailed, match=message):
        _query(url, params)


def test_each_workspace_queries_with_its_own_token(notion: tuple[FakeNotion, str]) -> None:
    _, url = notion
    source = NotionSource(
        workspaces={
            "ws-acme": Workspace(
                api_token=Secret(FAKE_TOKEN, origin="test"), kinds={TASKS_DB: "task"}
            )
        },
        api_url=url,
    )
    assert len(_query(url, {"database": "task"}, source=source)) == 3
    with pytest.raises(QueryFailed, match="workspace 'ws-other' is not configured"):
        _query(url, {"database": "task", "workspace": "ws-other"}, source=source)


# --- store.query over the hub's own history ------------------------------------------------


def _stored(store: Store, n: int, *, at: float, event_type: str, status_to: str) -> None:
    document = {
        "specversion": "1.0",
        "id": f"ev-{n}",
        "source": "notion",
        "type": event_type,
        "subject": f"page-{n}",
        "time": datetime.fromtimestamp(at, UTC).isoformat(),
        "data": {
            "entity": {"kind": "task", "id": f"page-{n}", "url": None, "title": f"Task {n}"},
            "actor": {"id": None, "name": None, "email": None},
            "changes": {"Status": {"from": "In progress", "to": status_to}},
            "fields": {"Status": status_to, "Assignee": ["Ada Lovelace"]},
            "raw": None,
        },
    }
    store.insert_events(
        [
            NewInbound(
                id=f"in-{n}",
                source="notion",
                provider_delivery_id=f"d-{n}",
                received_at=at,
                headers={},
                body=b"{}",
            )
        ]
    )
    store.claim_event(f"in-{n}", now=at, lease_s=60)
    store.finish_event(f"in-{n}", now=at, normalized=[document], new_deliveries=[])


def test_store_query_reads_the_period_before_the_event_with_the_rule_conditions() -> None:
    store = open_store("sqlite://")
    store.create_schema()
    end = MONDAY.timestamp()
    day = 86400.0
    _stored(
        store, 1, at=end - 8 * day, event_type="notion.page.properties_updated", status_to="Done"
    )
    _stored(
        store, 2, at=end - 6 * day, event_type="notion.page.properties_updated", status_to="Done"
    )
    _stored(
        store, 3, at=end - 1 * day, event_type="notion.page.properties_updated", status_to="Blocked"
    )
    _stored(store, 4, at=end - 1 * day, event_type="notion.page.created", status_to="Done")
    _stored(store, 5, at=end + 1, event_type="notion.page.properties_updated", status_to="Done")

    found = query_store(
        store,
        {
            "events": "notion.page.properties_*",
            "since": "7d",
            "where": {"entity.kind": "task", "changes.Status.to": "Done"},
        },
        end,
    )

    assert [e["id"] for e in found] == ["ev-2"]  # not too old, not later, right type and change
    assert [e["id"] for e in query_store(store, {"events": "notion.*", "since": "2d"}, end)] == [
        "ev-3",
        "ev-4",
    ]


def test_store_query_rejects_what_it_cannot_read() -> None:
    store = open_store("sqlite://")
    store.create_schema()
    with pytest.raises(QueryFailed, match="not a duration"):
        query_store(store, {"events": "*", "since": "last week"}, 0.0)
    with pytest.raises(QueryFailed, match="where"):
        query_store(store, {"events": "*", "where": {"fields.X": {"nope": 1}}}, 0.0)


# --- the digest filters ---------------------------------------------------------------------


def _task(
    title: str, status: str, people: list[str], milestone: list[str] | None = None
) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "title": title,
        "fields": {
            "Status": status,
            "Assignee": people,
            "Assignee emails": [f"{p.split()[0].lower()}@example.com" for p in people],
            "Milestone": milestone or [],
        },
    }


def test_digest_filters_count_group_and_draw() -> None:
    tasks = [
        _task(
            "a", "Done", ["Ada Lovelace", "Grace Hopper"], ["11111111-2222-3333-4444-555555555555"]
        ),
        _task("b", "In progress", ["Ada Lovelace"], ["11111111222233334444555555555555"]),
        _task("c", "Done", [], ["66666666-2222-3333-4444-555555555555"]),
    ]
    assert count_by(tasks, "fields.Assignee") == [
        {"name": "Ada Lovelace", "count": 2},
        {"name": "(nobody)", "count": 1},
        {"name": "Grace Hopper", "count": 1},
    ]
    done = [t for t in tasks if t["fields"]["Status"] == "Done"]
    assert tally({"done": done, "doing": tasks[1:2]}, "fields.Assignee") == [
        {"name": "(nobody)", "done": 1, "doing": 0},
        {"name": "Ada Lovelace", "done": 1, "doing": 1},
        {"name": "Grace Hopper", "done": 1, "doing": 0},
    ]
    labels = [{"id": "11111111-2222-3333-4444-555555555555", "title": "Launch"}]
    (launch,) = completion(tasks, "fields.Milestone", labels=labels)
    assert (launch["name"], launch["done"], launch["total"], launch["percent"]) == (
        "Launch",
        1,
        2,
        50,
    )
    assert progress_bar(0.5) == "█████░░░░░"
    assert progress_bar(70) == "███████░░░"
    assert progress_bar("n/a", 4) == "░░░░"
    assert [t["title"] for t in assigned_to(tasks, "ADA@example.com")] == ["a", "b"]
    assert [t["title"] for t in assigned_to(tasks, ["grace hopper"])] == ["a"]


# --- rules with queries: loading, dry runs, the worker's processing -----------------------


def _ruleset(tmp_path: Path, text: str, destinations: dict[str, Destination] | None = None) -> Any:
    (tmp_path / "rules.yaml").write_text(text, encoding="utf-8")
    return load_ruleset(
        tmp_path / "rules.yaml",
        connectors=PLUGINS.connectors,
        destinations=destinations
        or {"inbox": Destination(name="inbox", connector="log", options={})},
        engine=TemplateEngine(),
    )


SUMMARY = """
rules:
  - id: open-tasks
    schedule: "0 9 * * MON-FRI"
    query:
      open:
        notion.query:
          database: task
          filter: {property: Status, status: {does_not_equal: "{{ 'Done' }}"}}
    actions:
      - email:
          via: mail
          to: team@example.com
          subject: >-
            {{ query.open | length }}: {{ query.open | map(attribute='title') | sort | join(', ') }}
          template: weekly-report
          vars:
            period: this week
            titles: {$expr: "query.open | map(attribute='title') | sort"}
"""
MAIL = {"mail": Destination(name="mail", connector="email", options={})}


def test_query_results_are_only_visible_to_rules_that_declare_the_step(tmp_path: Path) -> None:
    with pytest.raises(ConfigErrors, match=r"rules.yaml:6:\d+: undefined name query"):
        _ruleset(
            tmp_path,
            """
rules:
  - id: no-step
    on: github.push
    actions:
      - log:
          to: inbox
          message: "{{ query.open | length }}"
""",
        )


def test_a_dry_run_uses_canned_results_and_expr_keeps_values_whole(tmp_path: Path) -> None:
    ruleset = _ruleset(tmp_path, SUMMARY, MAIL)
    tick = _schedule_event("open-tasks")
    canned = {"open": [{"title": "b"}, {"title": "a"}]}

    (verdict,) = dry_run(ruleset, tick, queries=canned)
    (without,) = dry_run(ruleset, tick)

    assert verdict.actions == [
        {
            "rule": "open-tasks",
            "email": {
                "via": "mail",
                "to": "team@example.com",
                "subject": "2: a, b",
                "template": "weekly-report",
                "vars": {"period": "this week", "titles": ["a", "b"]},
            },
        }
    ]
    assert (
        "give its results in the test case's `queries: {open: [...]}`"
        in without.actions[0]["error"]
    )


def _schedule_event(rule_id: str, when: datetime = MONDAY) -> dict[str, Any]:
    return Event(
        id=f"tick-{rule_id}",
        source="schedule",
        type=f"schedule.{rule_id}",
        subject=rule_id,
        time=when,
        entity=Entity(kind="schedule", id=rule_id, url=None, title=rule_id),
        actor=Actor(),
        changes={},
        fields={"date": when.date().isoformat()},
    ).to_dict()


def _process(
    tmp_path: Path,
    rules: str,
    queries: QueryRun | None,
    destinations: dict[str, Destination] | None = None,
) -> tuple[Store, list[Any]]:
    """Store a schedule tick and process it as the worker does; the planned deliveries."""
    store = open_store(f"sqlite:///{tmp_path / 'hub.db'}")
    store.create_schema()
    dests = destinations or MAIL
    ruleset = _ruleset(tmp_path, rules, dests)
    store.insert_events(
        [
            NewInbound(
                id="inbound-1",
                source="schedule",
                provider_delivery_id="open-tasks@tick",
                received_at=MONDAY.timestamp(),
                headers={},
                body=tick_body(
                    rule_id="open-tasks",
                    description="",
                    cron="0 9 * * MON-FRI",
                    timezone="UTC",
                    tick=MONDAY,
                    local=MONDAY,
                    caught_up=False,
                ),
            )
        ]
    )
    sources: dict[str, Source] = {"schedule": ScheduleSource()}
    process_event(
        "inbound-1",
        store=store,
        sources=sources,
        ruleset=ruleset,
        destinations=dests,
        clock=FakeClock(MONDAY),
        lease_s=60,
        queries=queries,
    )
    return store, store.list_deliveries(inbound_id="inbound-1")


def _runner(url: str, clock: FakeClock | None = None) -> QueryRun:
    source = NotionSource(api_token=Secret(FAKE_TOKEN, origin="test"), api_url=url, kinds=KINDS)

    def run(rule: Rule, document: Any) -> dict[str, Any]:
        async def go() -> dict[str, Any]:
            async with make_client(timeout_s=5) as http:
                ctx = EnrichContext(
                    clock=clock or FakeClock(MONDAY),
                    http=http,
                    snapshots=StoreSnapshots(open_store("sqlite://")),
                    throttle=_Budget().throttle,
                )
                return await run_queries(
                    rule,
                    document,
                    store=open_store("sqlite://"),
                    sources={"notion": source},
                    ctx=ctx,
                )

        return asyncio.run(go())

    return run


def test_a_scheduled_summary_plans_its_delivery_with_the_query_results(
    tmp_path: Path, notion: tuple[FakeNotion, str]
) -> None:
    _, url = notion
    _, (delivery,) = _process(tmp_path, SUMMARY, _runner(url))

    assert delivery.status == "pending"
    assert delivery.params["subject"] == (
        "3: Draft release notes, Update pricing page, Write launch post"
    )
    assert delivery.params["vars"]["titles"][0] == "Draft release notes"


def test_a_busy_notion_is_waited_for_then_answered(
    tmp_path: Path, notion: tuple[FakeNotion, str]
) -> None:
    fake, url = notion
    fake.rate_limit_next("2")
    fake.rate_limit_next("2")
    clock = FakeClock(MONDAY)

    _, (delivery,) = _process(tmp_path, SUMMARY, _runner(url, clock))

    assert delivery.params["subject"].startswith("3: ")
    assert clock.now().timestamp() - MONDAY.timestamp() == pytest.approx(4.0)  # Retry-After x2


def test_a_failing_query_makes_the_rules_deliveries_dead_with_the_reason(
    tmp_path: Path, notion: tuple[FakeNotion, str]
) -> None:
    fake, url = notion
    for _ in range(4):
        fake.fail_next(503, headers={"Retry-After": "1"})

    _, (delivery,) = _process(tmp_path, SUMMARY, _runner(url))

    assert delivery.status == "dead"
    assert "query 'open'" in (delivery.last_error or "")
    assert "gave up after 4 attempts" in (delivery.last_error or "")


def test_a_report_nobody_receives_reads_nothing(
    tmp_path: Path, notion: tuple[FakeNotion, str]
) -> None:
    fake, url = notion
    off = {"mail": Destination(name="mail", connector="email", options={}, disabled_reason="x")}

    _, (delivery,) = _process(tmp_path, SUMMARY, _runner(url), off)

    assert delivery.status == "skipped"
    assert fake.seen == []


def test_a_long_summary_stays_within_discords_message_limit() -> None:
    # The shipped daily summary over 300 overdue tasks with long titles.
    ruleset = load_ruleset(
        Path(__file__).parents[2] / "rules" / "summaries.yaml",
        connectors=PLUGINS.connectors,
        destinations={
            "project-updates": Destination(name="project-updates", connector="discord", options={}),
            "milestone-updates": Destination(
                name="milestone-updates", connector="discord", options={}
            ),
            "team-mail": Destination(name="team-mail", connector="email", options={}),
        },
        engine=TemplateEngine(),
    )
    template = page_item(notion_fixture("api", "pages", "pricing-page.json"), KINDS)
    overdue = [
        {
            **template,
            "title": f"Task {n} " + "x" * 200,
            "fields": {**template["fields"], "Due": "2026-11-01"},
        }
        for n in range(300)
    ]
    (verdict,) = [
        v
        for v in dry_run(
            ruleset, _schedule_event("daily-summary"), queries={"due": overdue, "active": []}
        )
        if v.matched
    ]
    params = verdict.actions[0]["discord"]
    ctx = delivery_context(
        None,
        now=MONDAY,
        rule_id="daily-summary",
        delivery_id="d",
        event_id="e",
        idempotency_key="k",
    )

    body = build_message(params, ctx)

    assert "300 overdue" in params["content"]
    assert params["content"].count("• ") == 15  # the template lists 15 and says there is more
    assert len(body["content"]) <= CONTENT_LIMIT


# --- notion.query `options:` (the statuses a chat command may set) -------------------------


def test_options_lists_a_status_propertys_options_with_their_groups(
    notion: tuple[FakeNotion, str],
) -> None:
    fake, url = notion
    with _with_data_sources(fake):
        statuses = _query(url, {"database": "task", "options": "Status"})
    source = notion_fixture("api", "data_sources", "tasks.json")
    assert [s["name"] for s in statuses] == [
        o["name"] for o in source["properties"]["Status"]["status"]["options"]
    ]
    assert statuses[0]["group"] is not None
    assert all(not s.path.endswith("/query") for s in fake.seen)  # no page was read


def test_options_of_a_property_without_options_says_what_it_is(
    notion: tuple[FakeNotion, str],
) -> None:
    _, url = notion
    with pytest.raises(QueryFailed, match="'Due' is a date property: it has no options"):
        _query(url, {"database": TASKS_DB, "options": "Due"})
    with pytest.raises(QueryFailed, match="no property 'Stage'"):
        _query(url, {"database": TASKS_DB, "options": "Stage"})
