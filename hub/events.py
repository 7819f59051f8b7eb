"""The common event every source produces: CloudEvents 1.0 in JSON form (DESIGN §3)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

EVENT_ID_NAMESPACE = uuid.UUID("6f1d7c3e-1b9a-4e0f-9a57-5b1f0c2d3e4a")


def event_id_for(source: str, provider_delivery_id: str, index: int = 0) -> str:
    """Stable event id from the provider's delivery id, so replays map to the same event."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{source}\x1f{provider_delivery_id}\x1f{index}"))


def idempotency_key(event_id: str, rule_id: str, action_index: int) -> str:
    """sha256(event_id, rule_id, action_index): one delivery per action, ever (DESIGN §1)."""
    material = f"{event_id}\x1f{rule_id}\x1f{action_index}".encode()
    return hashlib.sha256(material).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class Entity:
    kind: str
    id: str
    url: str | None = None
    title: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Actor:
    id: str | None = None
    name: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """A normalized event; `to_dict()` is the JSON rules and templates see."""

    id: str
    source: str
    type: str
    subject: str | None
    time: datetime
    entity: Entity
    actor: Actor = field(default_factory=Actor)
    changes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    fields: Mapping[str, Any] = field(default_factory=dict)
    raw: Any = None
    #: A created task's likely duplicates, `{id, title, url, score}` best first; None
    #: where duplicate detection does not apply (hub/notion/task_index.py).
    duplicates: tuple[Mapping[str, Any], ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "specversion": "1.0",
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "subject": self.subject,
            "time": format_time(self.time),
            "datacontenttype": "application/json",
            "data": {
                "entity": {
                    "kind": self.entity.kind,
                    "id": self.entity.id,
                    "url": self.entity.url,
                    "title": self.entity.title,
                },
                "actor": {"id": self.actor.id, "name": self.actor.name, "email": self.actor.email},
                "changes": {k: dict(v) for k, v in self.changes.items()},
                "fields": dict(self.fields),
                "raw": self.raw,
            },
        }
        if self.duplicates is not None:
            doc["data"]["duplicates"] = [dict(d) for d in self.duplicates]
        return doc


def event_from_dict(doc: Mapping[str, Any]) -> Event:
    """The inverse of `Event.to_dict`, for events kept as JSON between processing steps."""
    data = doc.get("data") or {}
    entity = data.get("entity") or {}
    actor = data.get("actor") or {}
    return Event(
        id=str(doc["id"]),
        source=str(doc["source"]),
        type=str(doc["type"]),
        subject=doc.get("subject"),
        time=datetime.fromisoformat(str(doc["time"]).replace("Z", "+00:00")),
        entity=Entity(
            kind=str(entity.get("kind") or ""),
            id=str(entity.get("id") or ""),
            url=entity.get("url"),
            title=entity.get("title"),
        ),
        actor=Actor(id=actor.get("id"), name=actor.get("name"), email=actor.get("email")),
        changes=dict(data.get("changes") or {}),
        fields=dict(data.get("fields") or {}),
        raw=data.get("raw"),
        duplicates=tuple(data["duplicates"]) if data.get("duplicates") is not None else None,
    )


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with a Z, as CloudEvents' JSON format writes it."""
    text = value.isoformat().replace("+00:00", "Z")
    return text
