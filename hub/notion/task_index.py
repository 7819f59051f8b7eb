"""The open tasks of a Notion database, kept in the store to find duplicates of new ones.

One document per database in the `snapshots` table under `tasks-index:<database id>`:
`{"refreshed_at": epoch s, "tasks": {page id: {title, url, description, assignees,
projects}}}`. The worker already fetches every page an event points at, so it updates the
index from those pages (created, updated, deleted: no extra request), and reads the whole
database again only when the index is missing or older than `refresh` (one request per 100
tasks, on the integration's shared budget). A new task is then compared with one store
read, whatever the burst: 100 new tasks cost 100 page fetches plus at most one refresh per
worker process (a lock per database makes a process's concurrent events wait for one).

Two worker processes updating one index at the same moment may lose one's change; the
next refresh repairs it (a missed duplicate, never a wrong one about a closed task for
longer than `refresh`).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hub.events import Event
from hub.notion.client import HttpPageFetcher
from hub.notion.query import QueryPlan, run_query
from hub.rules.duplicates import DEFAULT_LIMIT, DEFAULT_THRESHOLD, TaskText, find_duplicates
from hub.sources.base import SnapshotStore

__all__ = [
    "INDEX_PREFIX",
    "DuplicateSettings",
    "TaskIndex",
    "index_entry",
    "index_key",
    "is_open",
]

INDEX_PREFIX = "tasks-index:"
DEFAULT_CLOSED = ("Done", "Complete", "Completed", "Cancelled", "Canceled", "Archived")
DEFAULT_DESCRIPTION_PROPERTIES = ("Description", "Notes", "Summary")


@dataclass(frozen=True, slots=True, kw_only=True)
class DuplicateSettings:
    """`sources.notion.duplicates` in switchboard.yaml."""

    threshold: float = DEFAULT_THRESHOLD
    limit: int = DEFAULT_LIMIT
    refresh_s: float = 3600.0
    #: Status values of tasks that are no longer open (never reported as duplicates).
    closed: tuple[str, ...] = DEFAULT_CLOSED
    status_property: str = "Status"
    description_properties: tuple[str, ...] = DEFAULT_DESCRIPTION_PROPERTIES
    assignee_property: str = "Assignee"
    project_property: str = "Project"
    #: Tasks read per refresh at most (100 per request).
    max_tasks: int = 1000

    @classmethod
    def from_options(cls, options: Mapping[str, Any], refresh_s: float) -> DuplicateSettings:
        description = options.get("description_property")
        return cls(
            threshold=float(options.get("threshold", DEFAULT_THRESHOLD)),
            limit=int(options.get("limit", DEFAULT_LIMIT)),
            refresh_s=refresh_s,
            closed=tuple(options.get("closed", DEFAULT_CLOSED)),
            status_property=str(options.get("status_property", "Status")),
            description_properties=(str(description),)
            if description
            else DEFAULT_DESCRIPTION_PROPERTIES,
            assignee_property=str(options.get("assignee_property", "Assignee")),
            project_property=str(options.get("project_property", "Project")),
            max_tasks=int(options.get("max_tasks", 1000)),
        )


def index_key(database_id: str) -> str:
    return INDEX_PREFIX + database_id


def _names(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value if v not in (None, "")]
    return [str(value)] if value not in (None, "") else []


def is_open(fields: Mapping[str, Any], settings: DuplicateSettings) -> bool:
    """Not done, cancelled or in the trash."""
    if (fields.get("notion") or {}).get("in_trash"):
        return False
    status = fields.get(settings.status_property)
    return not (isinstance(status, str) and status in settings.closed)


def index_entry(
    *, title: str, url: str | None, fields: Mapping[str, Any], settings: DuplicateSettings
) -> dict[str, Any]:
    """What the index keeps of a task: enough to compare it and to link to it."""
    description = next(
        (str(fields[p]) for p in settings.description_properties if fields.get(p)), ""
    )
    return {
        "title": title,
        "url": url,
        "description": description[:1000],
        "assignees": _names(fields.get(settings.assignee_property)),
        "projects": _names(fields.get(settings.project_property)),
    }


def _text(page_id: str, entry: Mapping[str, Any]) -> TaskText:
    return TaskText(
        id=page_id,
        title=str(entry.get("title") or ""),
        description=str(entry.get("description") or ""),
        assignees=tuple(entry.get("assignees") or ()),
        projects=tuple(entry.get("projects") or ()),
        url=entry.get("url"),
    )


class TaskIndex:
    """Open-task indexes of the databases one Notion source watches."""

    def __init__(self, settings: DuplicateSettings) -> None:
        self.settings = settings
        self._locks: dict[str, asyncio.Lock] = {}

    async def track(
        self,
        event: Event,
        database_id: str,
        *,
        snapshots: SnapshotStore,
        now: float,
        read_all: Callable[[], Awaitable[list[dict[str, Any]]]],
    ) -> Event:
        """Update the index with the enriched page event; a created task gets `duplicates`.

        `read_all` lists the database's pages (`page_item` shapes) for a full refresh.
        """
        key = index_key(database_id)
        async with self._locks.setdefault(key, asyncio.Lock()):
            doc = await asyncio.to_thread(snapshots.get, key)
            if doc is None or now - float(doc.get("refreshed_at", 0)) >= self.settings.refresh_s:
                doc = {"refreshed_at": now, "tasks": self._entries(await read_all())}
            tasks: dict[str, Any] = dict(doc.get("tasks") or {})
            page_id = event.entity.id
            entry = index_entry(
                title=event.entity.title or "",
                url=event.entity.url,
                fields=event.fields,
                settings=self.settings,
            )
            if event.type.endswith(".created"):
                found = find_duplicates(
                    _text(page_id, entry),
                    (_text(i, e) for i, e in tasks.items()),
                    threshold=self.settings.threshold,
                    limit=self.settings.limit,
                )
                event = dataclasses.replace(event, duplicates=tuple(found))
            if event.type.endswith(".deleted") or not is_open(event.fields, self.settings):
                tasks.pop(page_id, None)
            else:
                tasks[page_id] = entry
            doc = {**doc, "tasks": tasks}
            await asyncio.to_thread(snapshots.put, key, doc, version=None, now=now)
        return event

    async def forget(
        self, page_id: str, database_ids: list[str], snapshots: SnapshotStore, *, now: float
    ) -> None:
        """A page Notion no longer shows (deleted, unshared): out of every index it was in."""
        for database_id in database_ids:
            key = index_key(database_id)
            async with self._locks.setdefault(key, asyncio.Lock()):
                doc = await asyncio.to_thread(snapshots.get, key)
                if doc is None or page_id not in (doc.get("tasks") or {}):
                    continue
                tasks = {i: e for i, e in doc["tasks"].items() if i != page_id}
                await asyncio.to_thread(
                    snapshots.put, key, {**doc, "tasks": tasks}, version=None, now=now
                )

    def _entries(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            item["id"]: index_entry(
                title=item.get("title") or "",
                url=item.get("url"),
                fields=item.get("fields") or {},
                settings=self.settings,
            )
            for item in items
            if not item.get("in_trash") and is_open(item.get("fields") or {}, self.settings)
        }


async def read_database(
    fetcher: HttpPageFetcher,
    database_id: str,
    *,
    kinds: Mapping[str, str],
    max_tasks: int,
    wait_for_budget: Callable[[], Awaitable[None]],
) -> list[dict[str, Any]]:
    """Every page of the database, up to `max_tasks` (closed ones are dropped later)."""
    plan = QueryPlan(database_id=database_id, data_source_id=None, body={}, limit=max_tasks)
    return await run_query(fetcher, plan, kinds=kinds, wait_for_budget=wait_for_budget)
