"""What changed on a page between two snapshots, and collapsing bursts of Notion events.

Notion sends ids only, so `changes` come from comparing the flattened page the worker
fetched with the last snapshot it stored. Notion also aggregates and retries events
(https://developers.notion.com/reference/webhooks-events-delivery#event-aggregation), so
several deliveries about one page seconds apart become one event here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from hub.notion.notices import NotionNotice

__all__ = ["Burst", "coalesce", "diff_properties"]

_T = TypeVar("_T")


def diff_properties(
    before: Mapping[str, Any] | None, after: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """`{name: {"from": old, "to": new}}` for every flattened property that differs.

    First sight (`before` is None): every property, each `from` None. A property present
    on one side only compares against None, so a deleted property shows `to: None`.
    """
    if before is None:
        return {name: {"from": None, "to": value} for name, value in after.items()}
    changes: dict[str, dict[str, Any]] = {}
    for name in [*after, *(k for k in before if k not in after)]:
        old, new = before.get(name), after.get(name)
        if old != new:
            changes[name] = {"from": old, "to": new}
    return changes


@dataclass(frozen=True, slots=True, kw_only=True)
class Burst:
    """Notices about one entity and type close in time, merged into one.

    `notice.id` is the earliest delivery's id, so the burst's event id is stable when the
    same deliveries are coalesced again; `event_ids` lists every distinct delivery absorbed.
    """

    notice: NotionNotice
    event_ids: tuple[str, ...]


def coalesce(notices: Iterable[NotionNotice], window: timedelta) -> list[Burst]:
    """Merge notices on the same entity with the same type, each within `window` of the last.

    Retries of one delivery (same `id`, higher `attempt_number`) count once. Notices are
    ordered by `timestamp` first, since Notion may deliver out of order. A notice without a
    timestamp cannot be placed in time and stays alone.
    """
    seen: set[str] = set()
    unique: list[NotionNotice] = []
    for notice in notices:
        if notice.id not in seen:
            seen.add(notice.id)
            unique.append(notice)
    timed = sorted((n for n in unique if n.timestamp), key=lambda n: (n.timestamp, n.id))
    groups: list[list[NotionNotice]] = []
    open_groups: dict[tuple[str, str], list[NotionNotice]] = {}
    for notice in timed:
        key = (notice.entity_id, notice.type)
        group = open_groups.get(key)
        last = group[-1].timestamp if group else None
        if group and last and notice.timestamp and notice.timestamp - last <= window:
            group.append(notice)
            continue
        group = [notice]
        groups.append(group)
        open_groups[key] = group
    groups += [[n] for n in unique if not n.timestamp]
    return [Burst(notice=_merge(g), event_ids=tuple(n.id for n in g)) for g in groups]


def _merge(group: list[NotionNotice]) -> NotionNotice:
    first, last = group[0], group[-1]
    if len(group) == 1:
        return first
    return dataclasses.replace(
        last,
        id=first.id,
        authors=_union(a for n in group for a in n.authors),
        updated_property_ids=_union(p for n in group for p in n.updated_property_ids),
        updated_block_ids=_union(b for n in group for b in n.updated_block_ids),
        schema_changes=tuple(c for n in group for c in n.schema_changes),
    )


def _union(items: Iterable[_T]) -> tuple[_T, ...]:
    return tuple(dict.fromkeys(items))
