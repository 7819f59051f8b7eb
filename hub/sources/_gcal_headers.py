"""What a Calendar push notification's X-Goog-* headers say: calendar, state, channel expiry."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import unquote

from hub.errors import ConfigError, MalformedPayload
from hub.events import Event

#: Warn the admin when a channel has less than this left: channels expire (about a week)
#: and must be renewed with a new events.watch before then.
RENEW_WARNING = timedelta(days=1)
_CALENDAR_IN_URI = re.compile(r"/calendars/([^/?#]+)/events")
_STATES = ("sync", "exists", "not_exists")


def calendar_of(headers: Mapping[str, str]) -> str:
    """The calendar id in X-Goog-Resource-URI (…/calendars/<id>/events)."""
    uri = headers.get("x-goog-resource-uri", "")
    match = _CALENDAR_IN_URI.search(uri)
    if match is None:
        raise MalformedPayload("X-Goog-Resource-URI does not name a calendar's events")
    calendar = unquote(match.group(1))
    if not _is_calendar_id(calendar):
        raise MalformedPayload("X-Goog-Resource-URI names something that is not a calendar id")
    return calendar


def check_calendar_id(calendar: str) -> None:
    """Refuse, before watching, an id whose notifications `calendar_of` would refuse."""
    if not _is_calendar_id(calendar):
        raise ConfigError(
            f"{calendar!r} is not a calendar id (no spaces, control characters or '/')",
            hint="copy it from the calendar's settings, e.g. team@group.calendar.google.com",
        )


def _is_calendar_id(calendar: str) -> bool:
    # Calendar ids are address-like; spaces, controls or slashes would make the event's
    # `source` (gcal/<calendar>) something no rule or schema can read.
    return bool(calendar) and not any(
        c.isspace() or not c.isprintable() or c == "/" for c in calendar
    )


def _state(event: Event) -> str | None:
    """X-Goog-Resource-State of the thin event (`reconcile` for the hub's own)."""
    state = (event.fields.get("gcal") or {}).get("resource_state")
    return state if isinstance(state, str) else None


def _expiry_notice(headers: Mapping[str, str], channel: str, now: datetime) -> str | None:
    """A note for the admin when the channel expires soon (it must be re-watched)."""
    text = headers.get("x-goog-channel-expiration", "")
    try:
        expires = parsedate_to_datetime(text) if text else None
    except (TypeError, ValueError):
        return None
    if expires is None or expires.tzinfo is None or expires - now > RENEW_WARNING:
        return None
    return (
        f"Google Calendar channel {channel} expires at {expires.isoformat()}; create a new "
        "events.watch channel (same address and token) before then"
    )


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name.lower(), "").strip()
    if not value:
        raise MalformedPayload(f"missing {name} header")
    return value
