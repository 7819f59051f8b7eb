"""Notion database automations' "Send webhook" action.

Docs: https://www.notion.com/help/webhook-actions
The action POSTs `{"source": {type: automation, automation_id, action_id, event_id,
attempt}, "data": <the page, properties included>}`. It cannot sign the body; it can send
custom headers, so authentication is a shared secret in a header the admin names
(default `X-Switchboard-Token`), compared in constant time. The body already carries the
page, so no fetch is needed: fields come straight from `flatten_properties`.
Event type: `notion.automation.<name>` (DESIGN §3), where the name is the last part of
the URL (`POST /hooks/notion-automation/<name>`), else the optional
`X-Switchboard-Automation` header set in the same action, else the configured name of the
automation id, else `send_webhook`. A separate namespace from `notion.page.*` keeps rules
on integration events from also firing on automation calls for the same edit.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from hub.clock import Clock
from hub.errors import MalformedPayload, SignatureError
from hub.events import Actor, Entity, Event, event_id_for
from hub.notion.enrich import page_parent_ids
from hub.notion.properties import flatten_properties, known_people, page_title
from hub.secrets import Secret
from hub.sources._http import parse_json_object, parse_time
from hub.sources._values import mapping, source_path, text_or_none, type_word
from hub.sources.base import HookRequest, NormalizeContext, RawEvent, Source, Verdict

__all__ = ["NotionAutomationSource"]

DEFAULT_AUTH_HEADER = "X-Switchboard-Token"
NAME_HEADER = "X-Switchboard-Automation"
#: Ingress's record of the URL's `/<name>` part (hub/ingress/receive.py sets it, senders cannot).
PATH_HEADER = "x-switchboard-path"


class NotionAutomationSource(Source):
    """Authenticates "Send webhook" calls by header and emits `notion.automation.<name>`."""

    name: ClassVar[str] = "notion-automation"
    settings_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "header": {
                "type": "string",
                "pattern": "^[A-Za-z0-9-]+$",
                "description": "Custom header the automation sends with the secret as value.",
                "default": DEFAULT_AUTH_HEADER,
                "examples": [DEFAULT_AUTH_HEADER],
            },
            "automations": {
                "type": "object",
                "description": "Automation id → name used in the event type.",
                "additionalProperties": {"type": "string", "pattern": "^[a-z0-9_-]+$"},
                "examples": [{"1e2f3a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b": "task-done"}],
            },
            "databases": {
                "type": "object",
                "description": "Database id → {kind: ...}, as for the notion source.",
                "additionalProperties": {
                    "type": "object",
                    "required": ["kind"],
                    "properties": {"kind": {"type": "string", "minLength": 1}},
                },
            },
        },
    }
    event_types: ClassVar[tuple[str, ...]] = ("notion.automation.*",)

    def __init__(
        self,
        *,
        header: str = DEFAULT_AUTH_HEADER,
        automations: Mapping[str, str] | None = None,
        kinds: Mapping[str, str] | None = None,
    ) -> None:
        self._header = header
        self._automations = dict(automations or {})
        self._kinds = dict(kinds or {})

    def sign(self, body: bytes, secret: str, *, now: datetime) -> dict[str, str]:
        """The automation sends the shared secret itself in the header the admin named."""
        return {self._header: secret}

    def verify(self, request: HookRequest, secret: Secret | None, clock: Clock) -> Verdict:
        if secret is None:
            raise SignatureError("no secret is configured for source 'notion-automation'")
        presented = request.headers.get(self._header.lower(), "").strip()
        if self._header.lower() == "authorization" and presented[:7].lower() == "bearer ":
            presented = presented[7:].strip()
        if not presented:
            raise SignatureError(f"missing {self._header} header")
        # Bytes, so a non-ASCII header value is a mismatch rather than a TypeError.
        if not hmac.compare_digest(presented.encode(), secret.reveal().encode()):
            raise SignatureError(f"{self._header} does not match the configured secret")
        payload = parse_json_object(request.body)
        _page(payload)
        return Verdict(
            provider_delivery_id=_provider_delivery_id(payload, request.body), status=200
        )

    def normalize(self, raw: RawEvent, ctx: NormalizeContext) -> list[Event]:
        payload = parse_json_object(raw.body)
        page = _page(payload)
        origin = mapping(payload.get("source"))
        automation_id = text_or_none(origin.get("automation_id"))
        name = _slug(
            raw.headers.get(PATH_HEADER, "")  # POST /hooks/notion-automation/<name>
            or raw.headers.get(NAME_HEADER.lower(), "")
            or (self._automations.get(automation_id, "") if automation_id else "")
            or "send_webhook"
        )
        page_id = str(page["id"])
        kind = next((k for i in page_parent_ids(page) if (k := self._kinds.get(i))), "page")
        editor = text_or_none(mapping(page.get("last_edited_by")).get("id"))
        editor_name, editor_email = known_people(page).get(editor or "", (None, None))
        fields = flatten_properties(page)
        fields.setdefault(
            "notion",
            {
                "automation_id": automation_id,
                "action_id": text_or_none(origin.get("action_id")),
                "event_id": text_or_none(origin.get("event_id")),
                "attempt": origin.get("attempt"),
                "page_id": page_id,
                "parent_ids": list(page_parent_ids(page)),
                "in_trash": bool(page.get("in_trash") or page.get("archived")),
            },
        )
        return [
            Event(
                id=event_id_for(self.name, raw.provider_delivery_id),
                source=source_path(self.name, automation_id),
                type=f"notion.automation.{name}",
                subject=f"page/{page_id}",
                time=parse_time(page.get("last_edited_time")) or raw.received_at,
                entity=Entity(
                    kind=kind, id=page_id, url=text_or_none(page.get("url")), title=page_title(page)
                ),
                actor=Actor(id=editor, name=editor_name, email=editor_email),
                fields=fields,
                raw=payload,
            )
        ]


def _page(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    page = mapping(payload.get("data"))
    if page.get("object") != "page" or not text_or_none(page.get("id")):
        raise MalformedPayload(
            "body is not a Notion 'Send webhook' call: expected a page in 'data'",
            code="bad_event",
        )
    return page


def _provider_delivery_id(payload: Mapping[str, Any], body: bytes) -> str:
    """automation/action/event ids: stable across `attempt`s, distinct per action.

    One edit can fire several actions with the same `event_id`, so all three are used.
    """
    origin = mapping(payload.get("source"))
    parts = [text_or_none(origin.get(k)) for k in ("automation_id", "action_id", "event_id")]
    if all(parts):
        return "/".join(p for p in parts if p)
    # No ids to go by: the body itself, so at least an identical resend is dropped.
    return "sha256-" + hashlib.sha256(body).hexdigest()


def _slug(text: str) -> str:
    return type_word(text, default="").strip("_") or "send_webhook"
