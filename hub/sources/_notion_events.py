"""Notion notices to Events: the handshake verdict, one thin event per notice, a burst merged."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any

from hub.errors import RequestRejected
from hub.events import Actor, Entity, Event, event_id_for
from hub.notion.notices import (
    NotionNotice,
    notice_fields,
)
from hub.sources._values import source_path, type_word
from hub.sources.base import (
    Verdict,
)

#: Verbs that say what happened to the page as a whole; they win over edits in a burst.
_LIFECYCLE = ("created", "deleted", "undeleted", "moved")

#: The JSON answer to the handshake; the token itself is never echoed.
HANDSHAKE_REPLY: Mapping[str, Any] = MappingProxyType(
    {
        "ok": True,
        "message": "verification token received; the admin can see it in Switchboard and "
        "must paste it into Notion's Verify dialog, then configure it as the notion secret",
    }
)


def _merge_burst(events: Sequence[Event]) -> Event:
    """One event for a burst on one page: the first id, the deciding verb, and every
    property, block and author any of them named (in first-seen order)."""
    first, last = events[0], events[-1]
    verbs = [e.type for e in events if e.type.rsplit(".", 1)[-1] in _LIFECYCLE]
    notion = dict(first.fields.get("notion") or {})
    for key in ("updated_properties", "updated_blocks", "authors"):
        merged: list[Any] = []
        for event in events:
            for item in (event.fields.get("notion") or {}).get(key) or []:
                if item not in merged:
                    merged.append(item)
        notion[key] = merged
    notion["coalesced_events"] = [e.id for e in events]
    return dataclasses.replace(
        first,
        type=verbs[-1] if verbs else last.type,
        time=last.time,
        fields={**first.fields, "notion": notion},
    )


#: Unsigned handshakes accepted per source (and process) in HANDSHAKE_WINDOW_S seconds.
HANDSHAKES_PER_WINDOW = 5
HANDSHAKE_WINDOW_S = 60.0


class TooManyHandshakes(RequestRejected):
    """Too many unsigned handshakes lately; this one is neither answered 200 nor kept."""

    status = 429
    code = "too_many_handshakes"


def handshake_verdict(token: str) -> Verdict:
    """Answer the handshake 200 without storing it; the id names the token, not reveals it."""
    digest = hashlib.sha256(token.encode()).hexdigest()[:16]
    return Verdict(
        provider_delivery_id=f"verification-{digest}",
        store=False,
        status=200,
        reply=HANDSHAKE_REPLY,
        admin_notice=(
            f"Notion subscription handshake: verification token {token} — unproven (anyone "
            "can send a handshake) until Notion's own Verify dialog accepts it; then set it "
            "as the notion source's secret (SWITCHBOARD_SECRET_NOTION)"
        ),
    )


def event_from_notice(
    notice: NotionNotice, *, received_at: datetime, kinds: Mapping[str, str] | None = None
) -> Event:
    """The thin event: ids, authors and updated property ids, no property values.

    Also used for a coalesced burst (hub/notion/diff.py): its notice keeps the first
    delivery's id, so the event id is the one that delivery would have had.
    """
    kinds = kinds or {}
    kind = notice.entity_type
    if notice.entity_type == "page":
        kind = next(
            (kinds[i] for i in (notice.data_source_id, notice.parent_id) if i and i in kinds),
            "page",
        )
    author = notice.authors[0] if notice.authors else None
    return Event(
        id=event_id_for("notion", notice.id),
        source=source_path("notion/workspace", notice.workspace_id)
        if notice.workspace_id
        else "notion",
        type=f"notion.{_slug(notice.type)}",
        subject=f"{_slug(notice.entity_type)}/{notice.entity_id}",
        time=notice.timestamp or received_at,
        entity=Entity(kind=kind, id=notice.entity_id, url=_url(notice)),
        actor=Actor(id=author.id if author else None),
        fields={"notion": notice_fields(notice)},
        raw=dict(notice.raw),
    )


def _url(notice: NotionNotice) -> str | None:
    """notion.so/<id without dashes> opens a page or database (and a comment's page)."""
    if notice.entity_type in ("page", "database"):
        target: str | None = notice.entity_id
    elif notice.entity_type == "comment":
        target = notice.page_id
    else:
        target = None
    return f"https://www.notion.so/{target.replace('-', '')}" if target else None


def _slug(text: str) -> str:
    """Dot-separated lower-case ASCII words, as the event type pattern allows."""
    words = (type_word(w, default="") for w in text.split("."))
    return ".".join(w for w in words if w) or "unknown"
