"""Ticks of `schedule:` rules as `schedule.<rule id>` events.

No provider and no webhook: `hub/schedule/scheduler.py` stores one inbound event per tick, with the
JSON body built by `tick_body`, and the worker normalizes it here like any other source.
A POST to /hooks/schedule is refused, so nobody outside can fire a schedule.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, ClassVar

from hub.clock import Clock
from hub.errors import UnknownSource
from hub.events import Entity, Event, event_id_for, format_time
from hub.secrets import Secret
from hub.sources.base import HookRequest, NormalizeContext, RawEvent, Source, Verdict

NAME = "schedule"


class ScheduleSource(Source):
    """Normalizes scheduler ticks; refuses HTTP requests."""

    name: ClassVar[str] = NAME
    settings_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {},
    }
    event_types: ClassVar[tuple[str, ...]] = ("schedule.*",)

    def verify(self, request: HookRequest, secret: Secret | None, clock: Clock) -> Verdict:
        raise UnknownSource(
            "schedule events are made by the scheduler and cannot be posted",
            code="not_a_webhook",
        )

    def normalize(self, raw: RawEvent, ctx: NormalizeContext) -> list[Event]:
        doc = json.loads(raw.body)
        if not isinstance(doc, dict):
            raise ValueError("a schedule tick body must be a JSON object")
        rule_id = str(doc["rule"])
        tick = datetime.fromisoformat(str(doc["tick"]).replace("Z", "+00:00"))
        return [
            Event(
                id=event_id_for(NAME, raw.provider_delivery_id),
                source=NAME,
                type=f"schedule.{rule_id}",
                subject=rule_id,
                time=tick,
                entity=Entity(kind="schedule", id=rule_id, title=doc.get("description") or None),
                fields={k: doc[k] for k in FIELDS if k in doc},
                raw=doc,
            )
        ]


#: Keys of the tick body that become `data.fields`.
FIELDS = ("rule", "tick", "local_time", "date", "timezone", "cron", "caught_up")


def tick_provider_delivery_id(rule_id: str, tick: datetime) -> str:
    """The inbound event's delivery id: one per rule and tick, the same in every scheduler."""
    return f"{rule_id}@{format_time(tick)}"


def tick_body(
    *,
    rule_id: str,
    description: str,
    cron: str,
    timezone: str,
    tick: datetime,
    local: datetime,
    caught_up: bool,
) -> bytes:
    """The stored form of a tick; `tick` is UTC, `local` the same instant in the rule's zone."""
    doc = {
        "rule": rule_id,
        "description": description,
        "tick": format_time(tick),
        "local_time": local.isoformat(),
        "date": local.date().isoformat(),
        "timezone": timezone,
        "cron": cron,
        "caught_up": caught_up,
    }
    return json.dumps(doc, separators=(",", ":")).encode()
