"""Database queries for rules' `notion.query` steps: pages as the plain values rules see.

API: https://developers.notion.com/reference/query-a-data-source (and the older
`POST /v1/databases/{id}/query`). Filter and sorts are Notion's own JSON, passed through
unchanged, so Notion's documentation is the reference for what a rule may write. Results
come 100 to a page; this follows `next_cursor` up to the step's `limit`, spending one
request of the integration's shared budget per page.

With `options: <property>` the step reads the database's schema instead of its pages and
gives that select / status / multi-select property's options as `{name, color, group}`, so
a chat command can check `/task status TASK-41 Don` against the statuses that exist.

Each result is shaped like an event's entity plus its fields, so a summary template reads
`task.title`, `task.url` and `task.fields.Status` the way a notification reads
`event.data.entity.title` and `event.data.fields.Status`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hub.notion.client import HttpPageFetcher, PermanentFetchError
from hub.notion.enrich import page_parent_ids
from hub.notion.properties import flatten_properties, page_title

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "QueryPlan", "page_item", "plan_query", "run_query"]

#: Results a step returns unless it sets `limit`; summaries rarely need more.
DEFAULT_LIMIT = 100
#: Ten requests at most per step: a summary must not drain the integration's budget.
MAX_LIMIT = 1000
_PAGE_SIZE = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryPlan:
    """A validated `notion.query` step: what to query and the body Notion gets."""

    database_id: str | None
    data_source_id: str | None
    body: Mapping[str, Any]
    limit: int
    #: `options: <property>`: list that property's options instead of querying pages.
    options: str | None = None


def plan_query(params: Mapping[str, Any], kinds: Mapping[str, str]) -> QueryPlan:
    """Check a rendered step; `database` may name a kind from the source's `databases`.

    Raises ValueError with what the rule author must fix.
    """
    database = params.get("database")
    data_source = params.get("data_source")
    if bool(database) == bool(data_source):
        raise ValueError("give exactly one of `database` (id or kind) and `data_source` (id)")
    if isinstance(database, str) and database in kinds.values():
        matches = sorted(db for db, kind in kinds.items() if kind == database)
        if len(matches) > 1:
            raise ValueError(
                f"kind '{database}' names {len(matches)} databases; give the database id"
            )
        database = matches[0]
    body: dict[str, Any] = {}
    for key in ("filter", "sorts"):
        if params.get(key) not in (None, "", [], {}):
            body[key] = params[key]
    if "filter" in body and not isinstance(body["filter"], Mapping):
        raise ValueError("`filter` must be an object in Notion's filter format")
    if "sorts" in body and not isinstance(body["sorts"], list):
        raise ValueError("`sorts` must be a list in Notion's sort format")
    try:
        limit = int(params.get("limit", DEFAULT_LIMIT))
    except (TypeError, ValueError):
        raise ValueError(f"`limit` must be a number, not {params.get('limit')!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"`limit` must be between 1 and {MAX_LIMIT}")
    options = params.get("options")
    if options is not None and (not isinstance(options, str) or not options.strip()):
        raise ValueError("`options` names one select or status property, e.g. options: Status")
    return QueryPlan(
        database_id=str(database) if database else None,
        data_source_id=str(data_source) if data_source else None,
        body=body,
        limit=limit,
        options=options.strip() if isinstance(options, str) else None,
    )


async def run_query(
    fetcher: HttpPageFetcher,
    plan: QueryPlan,
    *,
    kinds: Mapping[str, str],
    wait_for_budget: Callable[[], Awaitable[None]],
) -> list[dict[str, Any]]:
    """Every matching page (up to the limit), flattened; Notion's order is kept."""
    if plan.options is not None:
        return await _options(fetcher, plan, plan.options, wait_for_budget)
    data_source_id = plan.data_source_id
    if data_source_id is None and plan.database_id is not None:
        # From 2025-09-03 a database lists its data sources and only those can be queried;
        # an older database object carries its schema and is queried directly.
        await wait_for_budget()
        database = await fetcher.fetch_database(plan.database_id)
        sources = database.get("data_sources")
        first = sources[0] if isinstance(sources, list) and sources else None
        if isinstance(first, Mapping) and isinstance(first.get("id"), str):
            data_source_id = first["id"]
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while len(items) < plan.limit:
        body = {**plan.body, "page_size": min(_PAGE_SIZE, plan.limit - len(items))}
        if cursor:
            body["start_cursor"] = cursor
        await wait_for_budget()
        if data_source_id is not None:
            page = await fetcher.query_data_source(data_source_id, body)
        else:
            assert plan.database_id is not None  # noqa: S101 - plan_query guarantees one id
            page = await fetcher.query_database(plan.database_id, body)
        results = page.get("results")
        if not isinstance(results, list):
            raise PermanentFetchError("query answer has no `results` list", code="bad_body")
        items += [page_item(r, kinds) for r in results if isinstance(r, Mapping)]
        next_cursor = page.get("next_cursor")
        if not page.get("has_more") or not isinstance(next_cursor, str):
            break
        cursor = next_cursor
    return items[: plan.limit]


async def _options(
    fetcher: HttpPageFetcher,
    plan: QueryPlan,
    name: str,
    wait_for_budget: Callable[[], Awaitable[None]],
) -> list[dict[str, Any]]:
    """`{name, color, group}` per option of a select / status / multi-select property."""
    await wait_for_budget()
    if plan.data_source_id is not None:
        schema = await fetcher.fetch_data_source(plan.data_source_id)
    else:
        assert plan.database_id is not None  # noqa: S101 - plan_query guarantees one id
        schema = await fetcher.fetch_database(plan.database_id)
        sources = schema.get("data_sources")
        first = sources[0] if isinstance(sources, list) and sources else None
        if not isinstance(schema.get("properties"), Mapping) and isinstance(first, Mapping):
            await wait_for_budget()
            schema = await fetcher.fetch_data_source(str(first.get("id")))
    properties = schema.get("properties")
    prop = properties.get(name) if isinstance(properties, Mapping) else None
    if not isinstance(prop, Mapping):
        known = ", ".join(properties) if isinstance(properties, Mapping) else "none"
        raise PermanentFetchError(f"no property {name!r} (known: {known})", code="bad_step")
    kind = str(prop.get("type"))
    spec = prop.get(kind)
    if kind not in ("select", "status", "multi_select") or not isinstance(spec, Mapping):
        raise PermanentFetchError(f"{name!r} is a {kind} property: it has no options")
    groups = {
        str(option_id): str(group.get("name"))
        for group in spec.get("groups") or []
        if isinstance(group, Mapping)
        for option_id in group.get("option_ids") or []
    }
    return [
        {
            "name": str(option.get("name")),
            "color": option.get("color"),
            "group": groups.get(str(option.get("id"))),
        }
        for option in spec.get("options") or []
        if isinstance(option, Mapping)
    ]


def page_item(page: Mapping[str, Any], kinds: Mapping[str, str]) -> dict[str, Any]:
    """One result: `{id, url, title, kind, fields, created_time, last_edited_time}`."""
    kind = next((k for i in page_parent_ids(page) if (k := kinds.get(i))), "page")
    return {
        "id": str(page.get("id") or ""),
        "url": page.get("url"),
        "title": page_title(page) or "",
        "kind": kind,
        "fields": flatten_properties(page),
        "created_time": page.get("created_time"),
        "last_edited_time": page.get("last_edited_time"),
        "in_trash": bool(page.get("in_trash") or page.get("archived")),
    }
