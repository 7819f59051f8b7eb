"""The Google Calendar event resource built from a gcal action's rendered parameters.

Resource: https://developers.google.com/workspace/calendar/api/v3/reference/events.
Rendered templates are text, so every value is read from a string as well as its JSON
type (`meet: "true"`, attendees as `a@x,b@y`, reminders as `popup:10,email:1440`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from connectors.base import parse_boolean, parse_duration

__all__ = ["event_body", "parse_duration_s", "parse_emails", "parse_reminders"]


def event_body(
    params: Mapping[str, Any],
    *,
    event_id: str,
    operation: str,
    default_timezone: str | None,
    private: Mapping[str, str],
) -> dict[str, Any]:
    """The event resource for insert or patch: the given fields only; ValueError if wrong.

    `private` goes to `extendedProperties.private`, so a calendar event can be traced back
    to the rule and entity that made it (and a gcal source can tell our own edits apart).
    """
    body: dict[str, Any] = {"id": event_id}
    for key in ("summary", "description", "location"):
        if params.get(key) is not None:
            body[key] = str(params[key])
    timezone = str(params.get("timezone") or default_timezone or "") or None
    if params.get("start") not in (None, ""):
        start, end = _times(params, timezone)
        body["start"], body["end"] = start, end
    elif operation == "create":
        raise ValueError("gcal.create needs a start")
    elif params.get("end") not in (None, "") or params.get("duration") not in (None, ""):
        raise ValueError("end or duration without start; give start too")
    if params.get("attendees") is not None:
        body["attendees"] = [{"email": e} for e in parse_emails(params["attendees"])]
    if parse_boolean(params.get("meet"), blank_is_false=True, name="meet"):
        body["conferenceData"] = {
            "createRequest": {
                # Stable per event: Google ignores a createRequest it has seen, so a retry or
                # an update never makes a second Meet.
                "requestId": f"switchboard-{event_id[:40]}",
                "conferenceSolutionKey": {"type": "hangoutsMeet"},
            }
        }
    if params.get("reminders") not in (None, ""):
        body["reminders"] = parse_reminders(params["reminders"])
    if private:
        body["extendedProperties"] = {"private": dict(private)}
    return body


def _times(
    params: Mapping[str, Any], timezone: str | None
) -> tuple[dict[str, str], dict[str, str]]:
    start = _when(str(params["start"]), "start")
    end_raw = params.get("end")
    duration_raw = params.get("duration")
    if end_raw not in (None, ""):
        end = _when(str(end_raw), "end")
        if type(end) is not type(start):
            raise ValueError("start and end must both be dates or both be times")
    elif duration_raw not in (None, "") and isinstance(start, datetime):
        end = start + timedelta(seconds=parse_duration_s(duration_raw))
    elif duration_raw not in (None, ""):
        # An all-day event lasts whole days: a Notion date without a time still makes one
        # when the rule gives a meeting length (45m becomes that day).
        days = -(-parse_duration_s(duration_raw) // 86400)
        end = start + timedelta(days=days)
    elif isinstance(start, datetime):
        raise ValueError("a timed event needs end or duration (e.g. duration: 45m)")
    else:
        end = start + timedelta(days=1)
    if end <= start:
        raise ValueError(f"end {end.isoformat()} is not after start {start.isoformat()}")
    return _field(start, timezone, "start"), _field(end, timezone, "end")


def _when(text: str, what: str) -> date | datetime:
    text = text.strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{what} {text[:40]!r} is not a date or an ISO 8601 time") from None


def _field(value: date | datetime, timezone: str | None, what: str) -> dict[str, str]:
    if not isinstance(value, datetime):
        return {"date": value.isoformat()}
    if value.tzinfo is None and timezone is None:
        raise ValueError(f"{what} {value.isoformat()} has no offset; set timezone")
    out = {"dateTime": value.isoformat()}
    if timezone:
        out["timeZone"] = timezone
    return out


def parse_duration_s(value: Any) -> int:
    """Whole seconds (at least one) of a duration in the project's grammar (`parse_duration`)."""
    seconds = round(parse_duration(value).total_seconds())
    if seconds < 1:
        raise ValueError(f"duration {value!r} must be at least one second")
    return seconds


def parse_emails(value: Any) -> list[str]:
    """Attendee emails from a list or a comma/semicolon separated string, deduplicated."""
    items = value if isinstance(value, list) else re.split(r"[,;\n]", str(value))
    emails: list[str] = []
    for item in items:
        email = str(item).strip()
        if not email:
            continue
        if "@" not in email or " " in email:
            raise ValueError(f"attendee {email[:60]!r} is not an email address")
        if email.lower() not in (e.lower() for e in emails):
            emails.append(email)
    return emails


def parse_reminders(value: Any) -> dict[str, Any]:
    """`default`, a list of {method, minutes}, or `popup:10,email:1440`."""
    if isinstance(value, str) and value.strip().lower() == "default":
        return {"useDefault": True}
    if isinstance(value, str):
        pairs = [p.partition(":") for p in value.split(",") if p.strip()]
        items: list[Any] = [{"method": m.strip(), "minutes": n.strip()} for m, _, n in pairs]
    else:
        items = list(value)
    overrides = []
    for item in items:
        method = str(item.get("method", "")) if isinstance(item, Mapping) else ""
        minutes = str(item.get("minutes", "")) if isinstance(item, Mapping) else ""
        if method not in ("email", "popup") or not minutes.isdigit():
            raise ValueError(f"reminder {item!r} is not method:minutes (popup:10, email:1440)")
        overrides.append({"method": method, "minutes": int(minutes)})
    if len(overrides) > 5:  # Google's limit on reminder overrides
        raise ValueError("at most 5 reminders are allowed")
    return {"useDefault": False, "overrides": overrides}
