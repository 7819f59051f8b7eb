"""Turn a thin Notion event into a full one, given the page the worker fetched.

Pure: the worker fetches (hub/notion/client.py), loads the last snapshot from the store,
calls `enrich_page_event`, then stores the returned snapshot. Keeping the I/O outside
lets `simulate` and tests run the same code on fixtures.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hub.events import Actor, Entity, Event
from hub.notion.diff import diff_properties
from hub.notion.properties import flatten_properties, known_people, page_title

__all__ = ["PageSnapshot", "enrich_page_event", "page_parent_ids", "snapshot_of"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PageSnapshot:
    """What the worker stores per page to compute the next event's `changes`.

    `last_edited_time` lets the worker keep the newest snapshot when two fetches race.
    """

    page_id: str
    last_edited_time: str | None
    fields: Mapping[str, Any]


def snapshot_of(page: Mapping[str, Any]) -> PageSnapshot:
    """The flattened properties of a fetched page, ready to store."""
    edited = page.get("last_edited_time")
    return PageSnapshot(
        page_id=str(page.get("id") or ""),
        last_edited_time=edited if isinstance(edited, str) else None,
        fields=flatten_properties(page),
    )


def page_parent_ids(page: Mapping[str, Any]) -> tuple[str, ...]:
    """Database and data source ids a page lives in (either may be absent)."""
    parent = page.get("parent")
    if not isinstance(parent, Mapping):
        return ()
    ids = (parent.get("database_id"), parent.get("data_source_id"))
    return tuple(i for i in ids if isinstance(i, str) and i)


def enrich_page_event(
    event: Event,
    page: Mapping[str, Any],
    *,
    previous: Mapping[str, Any] | None,
    kinds: Mapping[str, str] | None = None,
    names: Mapping[str, str] | None = None,
) -> tuple[Event, PageSnapshot]:
    """The event with the page's title, URL, fields and `changes`, plus the new snapshot.

    Args:
        event: what `NotionSource.normalize` produced for a page event (or a burst of them).
        page: GET /v1/pages/{id} as fetched now.
        previous: the stored snapshot's `fields`, None the first time the page is seen
            (then every property is a change from None).
        kinds: database / data source id → entity kind (task, milestone...).
        names: property id → name from the schema, to name `updated_properties`.
    """
    snapshot = snapshot_of(page)
    fields: dict[str, Any] = dict(snapshot.fields)
    meta = dict(event.fields.get("notion") or {})
    if names is not None:
        meta["updated_property_names"] = [
            names[i] for i in meta.get("updated_properties", []) if i in names
        ]
    meta["in_trash"] = bool(page.get("in_trash") or page.get("archived"))
    fields.setdefault("notion", meta)
    kind = next((k for i in page_parent_ids(page) if (k := (kinds or {}).get(i))), None)
    url = page.get("url")
    entity = Entity(
        kind=kind or event.entity.kind,
        id=event.entity.id,
        url=url if isinstance(url, str) else event.entity.url,
        title=page_title(page) or event.entity.title,
    )
    return (
        dataclasses.replace(
            event,
            entity=entity,
            actor=_actor(event.actor, page),
            changes=diff_properties(previous, snapshot.fields),
            fields=fields,
        ),
        snapshot,
    )


def _actor(actor: Actor, page: Mapping[str, Any]) -> Actor:
    """Name the author from users the page mentions; fall back to its last editor."""
    editor = page.get("last_edited_by")
    user_id = actor.id or (editor.get("id") if isinstance(editor, Mapping) else None)
    if not isinstance(user_id, str):
        return actor
    name, email = known_people(page).get(user_id, (None, None))
    return Actor(id=user_id, name=actor.name or name, email=actor.email or email)
