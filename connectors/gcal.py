"""Google Calendar connector: create, update and cancel events (Calendar API v3).

Docs: https://developers.google.com/workspace/calendar/api/v3/reference/events
(insert, patch, delete) and https://developers.google.com/workspace/calendar/api/guides/errors.
We call the REST API with the worker's shared httpx client rather than
google-api-python-client, which does blocking I/O and is not a dependency.

Idempotency: the event id is ours to choose (base32hex `a-v0-9`, 5-1024 characters), so it
is derived from the source entity (`ctx.entity_key`, e.g. the Notion page): a retry or a
replay of `create` meets `409 duplicate` and patches the same event instead of inviting
everyone twice, and `update` / `cancel` find the event without a stored reference.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from connectors._gcal_calendar import DEFAULT_API_URL, Calendar, read_calendar
from connectors._gcal_errors import classify_gcal
from connectors._gcal_event import event_body
from connectors._google import (
    DEFAULT_TOKEN_URL,
    AccessTokens,
    TokenError,
)
from connectors.base import (
    SECRET_REF_SCHEMA,
    Connector,
    ConnectorEnv,
    DeliveryContext,
    RenderedAction,
    SendResult,
    fail,
    ok,
    retry,
)

OPERATIONS = ("create", "update", "cancel")
SEND_UPDATES = ("all", "externalOnly", "none")
_EVENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")
_TEMPLATED = ".*\\{\\{.*\\}\\}.*"

params_schema: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["calendar"],
    "properties": {
        "calendar": {
            "type": "string",
            "description": "Name of a gcal destination in switchboard.yaml.",
            "examples": ["reviews"],
        },
        "summary": {
            "type": "string",
            "description": "create, update: the event's title.",
            "examples": ["Review: {{ event.data.fields.Candidate }}"],
        },
        "description": {
            "type": "string",
            "description": "create, update: the event's notes (plain text).",
            "examples": ["Notion: {{ event.data.entity.url }}"],
        },
        "location": {
            "type": "string",
            "description": "create, update: free-form location.",
            "examples": ["Room 4B"],
        },
        "start": {
            "type": "string",
            "description": "create (required), update: a date (all-day) or an ISO 8601 time; "
            "a time without an offset needs `timezone`.",
            "examples": ["{{ event.data.fields.Date }}", "2026-11-24T15:00:00+01:00"],
        },
        "end": {
            "type": "string",
            "description": "create, update: end date or time (exclusive for all-day events); "
            "when empty, `duration` is used.",
            "examples": ["2026-11-24T15:45:00+01:00"],
        },
        "duration": {
            "type": ["string", "integer"],
            "description": "create, update: used when `end` is empty: seconds or 45m, 1h30m, "
            "2d (all-day events round up to whole days). Default for all-day events: 1 day.",
            "examples": ["45m"],
        },
        "timezone": {
            "type": "string",
            "description": "create, update: IANA time zone for start and end; default: the "
            "destination's `timezone`, else the offset in the time.",
            "examples": ["Europe/Berlin"],
        },
        "attendees": {
            "type": ["array", "string"],
            "items": {"type": "string"},
            "description": "create, update: attendee emails; a string is split on commas. "
            "On update the list replaces the attendees.",
            "examples": [
                ["ada@example.com"],
                "{{ event.data.fields['Reviewers emails'] | join(',') }}",
            ],
        },
        "meet": {
            "type": ["boolean", "string"],
            "description": "create, update: true adds a Google Meet link (asked for once per "
            "event, with a stable requestId).",
            "examples": [True],
        },
        "reminders": {
            "type": ["array", "string"],
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["method", "minutes"],
                "properties": {
                    "method": {"enum": ["email", "popup"]},
                    "minutes": {"type": ["integer", "string"]},
                },
            },
            "description": "create, update: `default` (the calendar's), or overrides as a "
            "list or a string like `popup:10,email:1440`.",
            "examples": ["popup:10,email:1440", [{"method": "popup", "minutes": 10}]],
        },
        "send_updates": {
            "type": "string",
            "description": "Who Google emails about the change (sendUpdates): all, "
            "externalOnly or none. Default: the destination's, else all.",
            "examples": ["all"],
        },
        "event_key": {
            "type": "string",
            "description": "Tells apart several calendar events made for one entity "
            "(e.g. `kickoff` and `review`); the same key finds the same event again.",
            "examples": ["review"],
        },
        "event_id": {
            "type": "string",
            "pattern": f"^([a-v0-9]{{5,1024}}|{_TEMPLATED})$",
            "description": "A Google event id to act on instead of the one derived from the "
            "entity (e.g. `{{ event.data.entity.id }}` of a gcal source event).",
            "examples": ["{{ event.data.entity.id }}"],
        },
    },
}

destination_schema: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    # As a user (OAuth client + refresh token) or as a service account.
    "oneOf": [
        {
            "required": ["client_id", "client_secret", "refresh_token"],
            "not": {"required": ["service_account"]},
        },
        {
            "required": ["service_account"],
            "not": {"anyOf": [{"required": ["client_secret"]}, {"required": ["refresh_token"]}]},
        },
    ],
    "properties": {
        "calendar_id": {
            "type": "string",
            "description": "Calendar to write to: `primary` or an id from the calendar's "
            "settings (…@group.calendar.google.com).",
            "default": "primary",
            "examples": ["c_3f9a2b7e1d0c4a58b6e2f1a9d8c7b6e5@group.calendar.google.com"],
        },
        "client_id": {
            "description": "OAuth client id (Google Cloud console → Credentials); text or a "
            "secret reference.",
            "oneOf": [{"type": "string"}, SECRET_REF_SCHEMA],
            "examples": ["1234567890-abc.apps.googleusercontent.com"],
        },
        "client_secret": {
            **SECRET_REF_SCHEMA,
            "description": "OAuth client secret (a secret reference).",
            "examples": [{"env": "GOOGLE_CLIENT_SECRET"}],
        },
        "refresh_token": {
            **SECRET_REF_SCHEMA,
            "description": "Refresh token granted with the calendar.events scope (a secret).",
            "examples": [{"env": "GOOGLE_REFRESH_TOKEN"}],
        },
        "service_account": {
            **SECRET_REF_SCHEMA,
            "description": "Service account JSON key (a secret reference), instead of "
            "client_id, client_secret and refresh_token. Share the calendar with the "
            "account, or set subject.",
            "examples": [{"file": "secrets/gcal-service-account.json"}],
        },
        "subject": {
            "type": "string",
            "description": "With service_account: the Workspace user to act as "
            "(domain-wide delegation), e.g. to write to that user's calendar.",
            "examples": ["ada@example.com"],
        },
        "timezone": {
            "type": "string",
            "description": "Default IANA time zone for times without an offset.",
            "examples": ["Europe/Berlin"],
        },
        "send_updates": {
            "enum": list(SEND_UPDATES),
            "description": "Default for the action's `send_updates`.",
            "default": "all",
            "examples": ["all"],
        },
        "api_url": {
            "type": "string",
            "description": "Calendar API base URL; change only for a test double.",
            "examples": [DEFAULT_API_URL],
        },
        "token_url": {
            "type": "string",
            "description": "OAuth token endpoint; change only for a test double.",
            "examples": [DEFAULT_TOKEN_URL],
        },
    },
}


class GcalConnector(Connector):
    """`gcal.create`, `gcal.update`, `gcal.cancel` of one event per entity."""

    name: ClassVar[str] = "gcal"
    params_schema: ClassVar[dict[str, Any]] = params_schema
    destination_schema: ClassVar[dict[str, Any]] = destination_schema
    destination_param: ClassVar[str | None] = "calendar"
    #: Calendar's default quota is per user per minute; ten a second stays well inside it
    #: and keeps invitation bursts from tripping rateLimitExceeded.
    rate_limits: ClassVar[tuple[tuple[int, float], ...]] = ((10, 1.0),)

    def __init__(self, env: ConnectorEnv) -> None:
        self._http = env.http
        self._tokens = AccessTokens(env.http)

    async def send(self, action: RenderedAction, ctx: DeliveryContext) -> SendResult:
        if action.operation not in OPERATIONS:
            named = f"'gcal.{action.operation}'" if action.operation else "'gcal'"
            return fail(f"{named} is not an operation; use gcal.create, gcal.update or gcal.cancel")
        try:
            cal = read_calendar(ctx.destination)
            event_id = google_event_id(action.params, ctx, action.operation)
            send_updates = _send_updates(action.params, cal)
        except ValueError as exc:
            return fail(str(exc))
        try:
            if action.operation == "cancel":
                return await self._cancel(cal, event_id, send_updates, ctx)
            try:
                body = event_body(
                    action.params,
                    event_id=event_id,
                    operation=action.operation,
                    default_timezone=cal.timezone,
                    private=_trace(ctx),
                )
            except ValueError as exc:
                return fail(f"cannot build the calendar event: {exc}")
            if action.operation == "create":
                return await self._create(cal, event_id, body, send_updates, ctx)
            return await self._update(cal, event_id, body, send_updates, ctx)
        except TokenError as exc:
            where = f" (destination '{cal.name}')"
            if exc.retryable:
                return retry(exc.after_s, cal.redact(exc.reason) + where)
            return fail(cal.redact(exc.reason) + where)
        except httpx.TimeoutException:
            return retry(None, f"timed out calling Google Calendar for '{cal.name}'")
        except (httpx.InvalidURL, httpx.UnsupportedProtocol):
            return fail(f"gcal destination '{cal.name}': api_url or token_url is not a usable URL")
        except httpx.TransportError as exc:
            return retry(None, f"could not reach Google Calendar: {type(exc).__name__}")

    async def _create(
        self, cal: Calendar, event_id: str, body: dict[str, Any], updates: str, ctx: DeliveryContext
    ) -> SendResult:
        """Insert with our id; 409 means an earlier attempt (or a cancelled one) holds it."""
        query = {"conferenceDataVersion": "1", "sendUpdates": updates}
        response = await self._call(cal, "POST", cal.events_url, ctx, query, body)
        if response.status_code == 409:
            # The id exists: a retry after a lost answer, a replay, or an event cancelled
            # earlier (deleted ids stay taken). Patch it back to what this create wants.
            patch = {k: v for k, v in body.items() if k != "id"} | {"status": "confirmed"}
            response = await self._call(
                cal, "PATCH", f"{cal.events_url}/{event_id}", ctx, query, patch
            )
            result = classify_gcal(response, ctx, cal, doing=f"creating event {event_id}")
            if result.outcome == "ok":
                note = f"event {event_id} existed already (409); patched it instead"
                return SendResult("ok", reason=note, ref=event_id, status_code=409)
            return result
        return classify_gcal(response, ctx, cal, doing=f"creating event {event_id}")

    async def _update(
        self, cal: Calendar, event_id: str, body: dict[str, Any], updates: str, ctx: DeliveryContext
    ) -> SendResult:
        """Patch; an event that is not there yet (the create failed or came later) is made."""
        query = {"conferenceDataVersion": "1", "sendUpdates": updates}
        patch = {k: v for k, v in body.items() if k != "id"}
        url = f"{cal.events_url}/{event_id}"
        response = await self._call(cal, "PATCH", url, ctx, query, patch)
        if response.status_code == 404:
            if "start" not in body or "end" not in body:
                return fail(
                    f"event {event_id} is not in calendar '{cal.name}' and the update has no "
                    "start and end to create it with; add start and duration to the action"
                )
            return await self._create(cal, event_id, body, updates, ctx)
        if response.status_code == 410:
            # Deleted (cancelled) in Calendar: updating it would not bring it back, and no
            # retry can change that; gcal.create restores a cancelled event.
            note = f"event {event_id} was cancelled in Google Calendar; not updated"
            return SendResult("ok", reason=note, ref=event_id, status_code=410)
        return classify_gcal(response, ctx, cal, doing=f"updating event {event_id}")

    async def _cancel(
        self, cal: Calendar, event_id: str, updates: str, ctx: DeliveryContext
    ) -> SendResult:
        url = f"{cal.events_url}/{event_id}"
        response = await self._call(cal, "DELETE", url, ctx, {"sendUpdates": updates}, None)
        if response.status_code in (404, 410):
            # 410 Gone: deleted before (by us or in Calendar); 404: never made. Either way
            # the event is not on anyone's calendar, which is what cancel asks for.
            return SendResult(
                "ok",
                reason=f"event {event_id} was already gone ({response.status_code})",
                ref=event_id,
                status_code=response.status_code,
            )
        result = classify_gcal(response, ctx, cal, doing=f"cancelling event {event_id}")
        if result.outcome == "ok":  # 204 No Content: the id is all there is to keep
            return ok(event_id, status_code=result.status_code)
        return result

    async def _call(
        self,
        cal: Calendar,
        method: str,
        url: str,
        ctx: DeliveryContext,
        query: Mapping[str, str],
        body: Mapping[str, Any] | None,
    ) -> httpx.Response:
        """One request; a 401 refreshes the access token once and sends again."""
        token = await self._tokens.token(cal.client, now=ctx.now)
        response = await self._request(method, url, token, query, body)
        if response.status_code == 401:
            # Revoked or expired early (a password change): one fresh token, then give up.
            self._tokens.forget(cal.client, token)
            token = await self._tokens.token(cal.client, now=ctx.now)
            response = await self._request(method, url, token, query, body)
        return response

    async def _request(
        self,
        method: str,
        url: str,
        token: str,
        query: Mapping[str, str],
        body: Mapping[str, Any] | None,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        return await self._http.request(method, url, params=dict(query), json=body, headers=headers)


def google_event_id(params: Mapping[str, Any], ctx: DeliveryContext, operation: str) -> str:
    """The event's id: given, or base32hex of a digest of the entity (and `event_key`)."""
    given = str(params.get("event_id") or "").strip()
    if given:
        if not _EVENT_ID.fullmatch(given):
            raise ValueError(
                f"event_id {given[:60]!r} is not a Google event id (a-v and 0-9, 5-1024 long)"
            )
        return given
    if ctx.entity_key is None and operation != "create":
        raise ValueError(
            f"gcal.{operation} needs an entity to find its event; this event has none, "
            "so give event_id"
        )
    # Without an entity a create is still idempotent per delivery, but cannot be updated.
    material = f"{ctx.entity_key or ctx.idempotency_key}\x1f{params.get('event_key') or ''}"
    digest = hashlib.sha256(material.encode()).digest()
    # RFC 4648 base32hex is 0-9A-V: exactly the characters Google allows, once lower-cased.
    return base64.b32hexencode(digest).decode().rstrip("=").lower()


def _trace(ctx: DeliveryContext) -> dict[str, str]:
    """Private extended properties naming the rule and entity behind the event."""
    private = {"switchboardRule": ctx.rule_id}
    if ctx.entity_key:
        private["switchboardEntity"] = ctx.entity_key[:1000]  # Google caps values near 1 KB
    return private


def _send_updates(params: Mapping[str, Any], cal: Calendar) -> str:
    value = str(params.get("send_updates") or cal.send_updates)
    if value not in SEND_UPDATES:
        raise ValueError(f"send_updates {value!r} must be one of {', '.join(SEND_UPDATES)}")
    return value
