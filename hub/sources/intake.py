"""Tasks from a posted task list (`POST /intake/{name}`, `switchboard intake`) as events.

No provider and no webhook: `hub/tasks/intake.py` stores one inbound event per task, with
the JSON body built by `task_body`, and the worker normalizes it here into an
`intake.<name>` event whose `data.fields` are the task. A POST to /hooks/intake is refused.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from hub.clock import Clock
from hub.errors import UnknownSource
from hub.events import Entity, Event, event_id_for
from hub.secrets import Secret
from hub.sources.base import HookRequest, NormalizeContext, RawEvent, Source, Verdict

NAME = "intake"
#: Prefix of the event type of a task sent to intake <name>: `intake.<name>`.
EVENT_PREFIX = "intake."


class IntakeSource(Source):
    """Normalizes tasks stored by the intake; refuses HTTP requests on /hooks."""

    name: ClassVar[str] = NAME
    settings_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {},
    }
    event_types: ClassVar[tuple[str, ...]] = ("intake.*",)

    def verify(self, request: HookRequest, secret: Secret | None, clock: Clock) -> Verdict:
        raise UnknownSource(
            "task lists go to POST /intake/{name}, not /hooks/intake", code="not_a_webhook"
        )

    def normalize(self, raw: RawEvent, ctx: NormalizeContext) -> list[Event]:
        doc = json.loads(raw.body)
        if not isinstance(doc, dict) or not isinstance(doc.get("fields"), dict):
            raise ValueError("an intake task body must be a JSON object with `fields`")
        intake = str(doc["intake"])
        fields: dict[str, Any] = doc["fields"]
        return [
            Event(
                id=event_id_for(NAME, raw.provider_delivery_id),
                source=NAME,
                type=EVENT_PREFIX + intake,
                subject=f"intake/{intake}/{fields['key']}",
                time=raw.received_at,
                entity=Entity(kind="task", id=str(fields["key"]), title=str(fields["title"])),
                fields={**fields, "intake": intake, "format": doc.get("format")},
                raw=doc,
            )
        ]


def task_provider_delivery_id(intake: str, key: str) -> str:
    """One per intake and task content: the same task sent again is a duplicate."""
    return f"{intake}/{key}"


def task_body(*, intake: str, fmt: str, fields: dict[str, Any]) -> bytes:
    return json.dumps(
        {"intake": intake, "format": fmt, "fields": fields}, separators=(",", ":")
    ).encode()
