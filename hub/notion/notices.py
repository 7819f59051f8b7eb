"""Parse Notion's thin webhook events ("notices": ids, no values) and the handshake body.

Envelope: https://developers.notion.com/reference/webhooks-events-delivery
Handshake: https://developers.notion.com/reference/webhooks (the first POST of a new
subscription carries only `verification_token`, unsigned).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hub.errors import MalformedPayload
from hub.sources._http import parse_json_object, parse_time
from hub.sources._values import mapping, text_or_none

__all__ = [
    "Author",
    "NotionNotice",
    "is_handshake",
    "notice_fields",
    "parse_notice",
    "verification_token_of",
]

#: A token longer than this is not one Notion made (theirs are ~50 characters).
_MAX_TOKEN_CHARS = 256


@dataclass(frozen=True, slots=True, kw_only=True)
class Author:
    """Who caused an event: `type` is person, bot or agent; only the id is sent."""

    id: str
    type: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NotionNotice:
    """One integration webhook event, as sent: what changed, never the new values."""

    id: str
    type: str
    entity_id: str
    entity_type: str
    timestamp: datetime | None = None
    workspace_id: str | None = None
    workspace_name: str | None = None
    subscription_id: str | None = None
    integration_id: str | None = None
    attempt_number: int | None = None
    parent_id: str | None = None
    parent_type: str | None = None
    #: Set for pages in a data source (subscriptions on API version 2025-09-03).
    data_source_id: str | None = None
    #: comment.* events name the page they are on.
    page_id: str | None = None
    authors: tuple[Author, ...] = ()
    #: Page events: property ids (URL-encoded, e.g. "%3AUPp"). Schema events: the ids of
    #: the `{id, name, action}` objects, which are kept whole in `schema_changes`.
    updated_property_ids: tuple[str, ...] = ()
    schema_changes: tuple[Mapping[str, Any], ...] = ()
    updated_block_ids: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def verb(self) -> str:
        """The part after the entity: `properties_updated` for `page.properties_updated`."""
        return self.type.partition(".")[2] or self.type


def verification_token_of(body: bytes) -> str | None:
    """The subscription's verification token when `body` is Notion's handshake, else None.

    Pure, so ingress can persist the token for the admin (it becomes the signing secret once
    the admin pastes it back into Notion and configures it as the source's secret).
    """
    try:
        payload = parse_json_object(body)
    except MalformedPayload:
        return None
    return _token(payload)


def is_handshake(payload: Mapping[str, Any]) -> bool:
    """A body with only `verification_token` (an event always has `type` and `id`)."""
    return _token(payload) is not None


def _token(payload: Mapping[str, Any]) -> str | None:
    token = payload.get("verification_token")
    if "type" in payload or not isinstance(token, str):
        return None
    if not token or len(token) > _MAX_TOKEN_CHARS or not token.isascii():
        return None
    if not token.isprintable() or any(c.isspace() for c in token):
        return None
    return token


def parse_notice(payload: Mapping[str, Any]) -> NotionNotice:
    """Read the envelope; raise MalformedPayload when a required part is missing."""
    event_id = payload.get("id")
    event_type = payload.get("type")
    entity = mapping(payload.get("entity"))
    if not isinstance(event_id, str) or not event_id.strip():
        raise MalformedPayload("Notion event has no 'id'", code="bad_event")
    if not isinstance(event_type, str) or not all(event_type.partition(".")[::2]):
        raise MalformedPayload(
            f"Notion event {event_id} has no 'type' like page.created", code="bad_event"
        )
    entity_id, entity_type = entity.get("id"), entity.get("type")
    if not isinstance(entity_id, str) or not entity_id or not isinstance(entity_type, str):
        raise MalformedPayload(f"Notion event {event_id} has no entity id/type", code="bad_event")
    data = mapping(payload.get("data"))
    parent = mapping(data.get("parent"))
    attempt = payload.get("attempt_number")
    updated = data.get("updated_properties")
    updated_list = updated if isinstance(updated, list) else []
    blocks = data.get("updated_blocks")
    authors = payload.get("authors")  # a list per the docs; `true` here was a 500
    return NotionNotice(
        id=event_id,
        type=event_type,
        entity_id=entity_id,
        entity_type=entity_type,
        timestamp=parse_time(payload.get("timestamp")),
        workspace_id=text_or_none(payload.get("workspace_id")),
        workspace_name=text_or_none(payload.get("workspace_name")),
        subscription_id=text_or_none(payload.get("subscription_id")),
        integration_id=text_or_none(payload.get("integration_id")),
        attempt_number=attempt
        if isinstance(attempt, int) and not isinstance(attempt, bool)
        else None,
        parent_id=text_or_none(parent.get("id")),
        parent_type=text_or_none(parent.get("type")),
        data_source_id=text_or_none(parent.get("data_source_id"))
        or (text_or_none(parent.get("id")) if parent.get("type") == "data_source" else None),
        page_id=text_or_none(data.get("page_id")),
        authors=tuple(
            Author(id=a["id"], type=text_or_none(a.get("type")))
            for a in (authors if isinstance(authors, list) else [])
            if isinstance(a, Mapping) and isinstance(a.get("id"), str)
        ),
        updated_property_ids=tuple(
            p if isinstance(p, str) else str(mapping(p).get("id"))
            for p in updated_list
            if isinstance(p, str) or isinstance(mapping(p).get("id"), str)
        ),
        schema_changes=tuple(dict(p) for p in updated_list if isinstance(p, Mapping)),
        updated_block_ids=tuple(
            b["id"]
            for b in (blocks if isinstance(blocks, list) else [])
            if isinstance(b, Mapping) and isinstance(b.get("id"), str)
        ),
        raw=payload,
    )


def notice_fields(notice: NotionNotice) -> dict[str, Any]:
    """What a thin event tells rules, kept under `fields.notion` so no property shadows it."""
    return {
        "event_id": notice.id,
        "type": notice.type,
        "entity_id": notice.entity_id,
        "entity_type": notice.entity_type,
        "workspace_id": notice.workspace_id,
        "workspace_name": notice.workspace_name,
        "subscription_id": notice.subscription_id,
        "parent_id": notice.parent_id,
        "parent_type": notice.parent_type,
        "data_source_id": notice.data_source_id,
        "page_id": notice.page_id,
        "attempt_number": notice.attempt_number,
        "authors": [{"id": a.id, "type": a.type} for a in notice.authors],
        "updated_properties": list(notice.updated_property_ids),
        "schema_changes": [dict(c) for c in notice.schema_changes],
        "updated_blocks": list(notice.updated_block_ids),
    }
