"""People in templates: the filters that look a person up in the people directory.

The directory itself (`Person`, `Directory`, the `people:` and `roles:` sections) is
config, in hub/config/people.py; a template reaches it through the `people` view the
matcher puts in every context (`Directory.templates_view`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hub.config.people import Directory, PeopleView

__all__ = ["local_hour_is", "mention", "person_data", "with_person"]


def _directory_of(context: Mapping[str, Any]) -> Directory:
    view = context.get("people")
    return view.directory if isinstance(view, PeopleView) else Directory()


def mention(context: Mapping[str, Any], ref: Any, platform: str = "discord") -> str:
    """`{{ task.fields.Assignee | mention('slack') }}`: chat mentions of the people a value
    names (a list gives them comma-separated); anyone unknown stays as written."""
    directory = _directory_of(context)
    refs = ref if isinstance(ref, list | tuple) else [ref]
    shown = []
    for one in refs:
        person = directory.find(one)
        shown.append(person.mention(platform) if person else str(one))
    return ", ".join(shown)


def person_data(context: Mapping[str, Any], ref: Any) -> dict[str, Any] | None:
    """`{{ (event.data.actor.id | person).name }}`: a person's data, or None if unknown."""
    person = _directory_of(context).find(ref)
    return person.as_dict() if person else None


def with_person(
    context: Mapping[str, Any],
    values: Mapping[str, Any],
    key: str,
    attribute: str = "notion",
    required: bool = False,
) -> dict[str, Any]:
    """`{{ args | with_person('assignee') }}`: adds `assignee_person` (the person's data or
    None) and `assignee_ok` (nobody named and not `required`, or someone known who has an
    `attribute` id), so an expression can decide without assigning variables."""
    ref = values.get(key)
    person = _directory_of(context).find(ref) if ref not in (None, "") else None
    if ref in (None, ""):
        fine = not required
    else:
        fine = person is not None and bool(getattr(person, attribute, None))
    return {
        **values,
        f"{key}_person": person.as_dict() if person else None,
        f"{key}_ok": fine,
    }


_WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


def local_hour_is(people: Any, when: Any, hour: int, days: str = "MON-SUN") -> list[Any]:
    """`{{ people.values() | local_hour_is(event.time, 9, 'MON-FRI') }}`: the people for
    whom the tick at `when` (ISO time) falls in `hour` o'clock on one of `days` in their
    own time zone, so an hourly schedule DMs everyone at 09:00 where they are."""
    instant = datetime.fromisoformat(str(when).replace("Z", "+00:00"))
    allowed = _days(days)
    out = []
    for person in people or []:
        zone = person.get("timezone") if isinstance(person, Mapping) else None
        try:
            local = instant.astimezone(ZoneInfo(str(zone or "UTC")))
        except (ZoneInfoNotFoundError, ValueError):
            continue
        if local.hour == int(hour) and local.weekday() in allowed:
            out.append(person)
    return out


def _days(spec: str) -> set[int]:
    days: set[int] = set()
    for part in str(spec).upper().split(","):
        first, _, last = part.strip().partition("-")
        start = _WEEKDAYS.index(first)
        end = _WEEKDAYS.index(last) if last else start
        days.update(range(start, end + 1))
    return days
