"""Google Calendar push notifications, completed by incremental sync in the worker.

Docs: https://developers.google.com/workspace/calendar/api/guides/push and
https://developers.google.com/workspace/calendar/api/guides/sync.
A watch channel POSTs an empty body; what happened is in headers: `X-Goog-Channel-ID`,
`X-Goog-Channel-Token` (the token given to events.watch: this source's secret, compared in
constant time), `X-Goog-Resource-State` (`sync` once when the channel opens, then
`exists`), `X-Goog-Message-Number` (grows per channel: with the channel id, the delivery
id) and `X-Goog-Resource-URI` (names the calendar). Notifications say only "something
changed", so `normalize` makes a thin `gcal.calendar.changed` and the worker runs
`events.list` with the stored `syncToken`, compares each changed event with its snapshot
and emits `gcal.event.created|updated|cancelled` with `changes`. A `410` means the token
expired: a full resync, compared with the snapshots so old events are not news again.
`watch` takes the first sync token before the channel opens, so the first push is news.
Channels (renewal under a lease, stopping replaced ones, reconciliation) are in
hub/sources/_gcal_channels.py; a push from a channel the hub does not know is dropped.
We call the REST API with the worker's httpx client rather than google-api-python-client,
which does blocking I/O and is not a dependency.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar

from connectors._google import GoogleCredentials, ServiceAccount, UserGrant
from connectors.base import CliCommand, parse_duration
from hub.clock import Clock
from hub.errors import ConfigError, MalformedPayload, SignatureError
from hub.events import Actor, Entity, Event, event_id_for
from hub.secrets import Secret
from hub.sources._gcal_api import (
    API_URL,
    SCOPE,
    TOKEN_URL,
    ApiFailure,
    CalendarReader,
    SyncTokenGone,
)
from hub.sources._gcal_channels import (
    DEFAULT_TTL_S,
    RECONCILE_STATE,
    ChannelBusy,
    Channels,
    reconcile_notice,
    renewal_due,
)
from hub.sources._gcal_headers import (
    _STATES,
    _expiry_notice,
    _header,
    _state,
    calendar_of,
    check_calendar_id,
)
from hub.sources._gcal_settings import SETTINGS_SCHEMA
from hub.sources._http import parse_time
from hub.sources._values import mapping, text_or_none
from hub.sources.base import (
    EnrichContext,
    HookRequest,
    NormalizeContext,
    RawEvent,
    RetryLater,
    Source,
    Verdict,
)

__all__ = ["GcalSource", "event_snapshot"]

log = logging.getLogger("switchboard.sources.gcal")

#: What `changes` compares; anything else changing makes no event.
TRACKED = ("summary", "description", "location", "start", "end", "status", "attendees")


class GcalSource(Source):
    """Verifies Calendar push notifications; syncs the calendar they point at."""

    name: ClassVar[str] = "gcal"
    settings_schema: ClassVar[dict[str, Any]] = SETTINGS_SCHEMA
    #: The push itself, then what the sync found (`verb` in `_event`): British "cancelled",
    #: as Google spells the status, so `on: gcal.event.canceled` gets a suggestion.
    event_types: ClassVar[tuple[str, ...]] = (
        "gcal.calendar.changed",
        "gcal.event.created",
        "gcal.event.updated",
        "gcal.event.cancelled",
    )

    def __init__(
        self,
        *,
        kinds: Mapping[str, str] | None = None,
        grant: GoogleCredentials | None = None,
        api_url: str = API_URL,
        coalesce_window_s: float = 2.0,
        reconcile_interval_s: float = 300.0,
    ) -> None:
        self._kinds = dict(kinds or {})
        self._reader = CalendarReader(grant, api_url) if grant is not None else None
        self._channels = Channels(self._reader) if self._reader is not None else None
        #: Notifications for one calendar this close together are synced once.
        self.coalesce_window_s = coalesce_window_s
        #: Each watched calendar is synced this often anyway (0: never).
        self.reconcile_interval_s = reconcile_interval_s

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> GcalSource:
        """Build from `sources.gcal` in switchboard.yaml (validated by settings_schema)."""
        grant: GoogleCredentials | None = None
        key, subject = options.get("service_account"), options.get("subject")
        token_url = str(options.get("token_url", TOKEN_URL))
        client_id = options.get("client_id")
        if isinstance(client_id, Secret):
            client_id = client_id.reveal()
        secret, refresh = options.get("client_secret"), options.get("refresh_token")
        if isinstance(key, Secret):
            try:
                grant = ServiceAccount.from_key(
                    key.reveal(),
                    scopes=(SCOPE,),
                    subject=str(subject) if subject else None,
                    token_url=str(options["token_url"]) if "token_url" in options else None,
                )
            except ValueError as exc:
                raise ConfigError(f"sources.gcal.{exc}") from None
        elif (
            isinstance(client_id, str)
            and isinstance(secret, Secret)
            and isinstance(refresh, Secret)
        ):
            grant = UserGrant(client_id, secret.reveal(), refresh.reveal(), token_url)
        calendars = options.get("calendars") or {}
        return cls(
            kinds={cal: str(spec["kind"]) for cal, spec in calendars.items()},
            grant=grant,
            api_url=str(options.get("api_url", API_URL)),
            coalesce_window_s=parse_duration(options.get("coalesce_window", "2s")).total_seconds(),
            reconcile_interval_s=parse_duration(
                options.get("reconcile_interval", "5m")
            ).total_seconds(),
        )

    @property
    def reader(self) -> CalendarReader | None:
        """The Calendar API client (None without OAuth settings), for `switchboard gcal`."""
        return self._reader

    async def watch(
        self, ctx: EnrichContext, calendar: str, address: str, secret: Secret, ttl_s: float
    ) -> dict[str, Any]:
        """Open a push channel for `calendar` and remember it (for renewal and `stop`).

        A calendar never synced is listed first: its sync token is the baseline the first
        push syncs from, so the first change after the watch is routed, not learned.
        A channel already open for it is replaced and stopped.
        """
        if self._reader is None or self._channels is None:
            raise ApiFailure(
                "sources.gcal needs service_account, or client_id, client_secret and refresh_token",
                retryable=False,
            )
        check_calendar_id(calendar)
        await self.baseline(ctx, calendar)
        channel = await self._channels.open(
            ctx, calendar, address=address, token=secret.reveal(), ttl_s=ttl_s
        )
        if channel is None:  # not reached: without `due`, opening is always due
            raise ApiFailure(f"no channel was opened for {calendar}", retryable=True)
        return channel

    async def baseline(self, ctx: EnrichContext, calendar: str) -> bool:
        """Learn a calendar never synced (snapshots + sync token, no events); False when
        it has been synced already (its token must not skip changes not yet synced)."""
        reader = self._reader
        state_key = f"gcal:sync:{calendar}"
        if reader is None or (await asyncio.to_thread(ctx.snapshots.get, state_key)) is not None:
            return False
        items, next_token = await reader.list_events(ctx, calendar, None)
        for item in items:
            await self._remember(item, calendar, ctx)
        now = ctx.clock.now().timestamp()
        state = {"sync_token": next_token, "mode": "initial"}
        await asyncio.to_thread(ctx.snapshots.put, state_key, state, version=None, now=now)
        return True

    async def stop(self, ctx: EnrichContext, calendar: str) -> bool:
        """Stop and forget the calendar's channels; False when none was open."""
        if self._channels is None:
            return False
        return await self._channels.stop(ctx, calendar)

    async def maintain(self, ctx: EnrichContext, secret: Secret | None) -> list[RawEvent]:
        """Upkeep (hub/schedule/upkeep.py, every scheduler, every minute): renew each remembered
        channel a day before it expires, stop replaced channels whose stop failed, and
        return one reconciliation notice per watched calendar and interval, which the
        scheduler stores like a push (the worker syncs; duplicates are stored once)."""
        channels = self._channels
        if channels is None or secret is None:
            return []
        now = ctx.clock.now()
        notices: list[RawEvent] = []
        for calendar, channel in (await channels.saved(ctx)).items():
            due = renewal_due(now)
            try:
                if due(channel):
                    renewed = await channels.open(
                        ctx,
                        calendar,
                        address=str(channel.get("address")),
                        token=secret.reveal(),
                        ttl_s=float(channel.get("ttl_s") or DEFAULT_TTL_S),
                        due=due,
                    )
                    if renewed is not None:
                        log.info("renewed the push channel of calendar %s", calendar)
                elif any(not old.get("stopped") for old in channel.get("retired") or []):
                    await channels.stop_retired(ctx, calendar)
            except ChannelBusy:
                log.info("calendar %s: another scheduler is renewing its channel", calendar)
            except ApiFailure as exc:
                log.warning("could not renew the channel of calendar %s: %s", calendar, exc)
            if self.reconcile_interval_s > 0:
                notices.append(reconcile_notice(calendar, now, self.reconcile_interval_s))
        return notices

    # --- ingress ---------------------------------------------------------------------

    @classmethod
    def cli_commands(cls) -> Sequence[CliCommand]:
        """`switchboard gcal watch|stop|auth`."""
        from hub.sources._gcal_cli import cli_commands  # only the CLI loads it

        return cli_commands(cls)

    def verify(self, request: HookRequest, secret: Secret | None, clock: Clock) -> Verdict:
        headers = request.headers
        presented = headers.get("x-goog-channel-token", "")
        if secret is None:
            raise SignatureError(
                "no channel token is configured for source 'gcal'; set the token you give "
                "events.watch as sources.gcal.secret"
            )
        expected = secret.reveal()
        # Ingress decodes headers as latin-1; compare_digest wants ASCII text or bytes.
        if not presented or not hmac.compare_digest(presented.encode("latin-1"), expected.encode()):
            raise SignatureError("X-Goog-Channel-Token does not match the configured token")
        channel = _header(headers, "X-Goog-Channel-ID")
        number = _header(headers, "X-Goog-Message-Number")
        state = _header(headers, "X-Goog-Resource-State")
        if not number.isdigit():
            raise MalformedPayload("X-Goog-Message-Number must be a number")
        if state not in _STATES:
            raise MalformedPayload(f"X-Goog-Resource-State {state[:30]!r} is not one of {_STATES}")
        provider_delivery_id = f"{channel}:{number}"
        notice = _expiry_notice(headers, channel, clock.now())
        if state == "sync":
            # The channel's handshake: nothing changed yet, so nothing to store or sync.
            return Verdict(
                provider_delivery_id=provider_delivery_id,
                store=False,
                status=200,
                reply={},
                admin_notice=notice,
            )
        calendar_of(headers)  # refuse, in ingress, what the worker could not sync
        return Verdict(provider_delivery_id=provider_delivery_id, admin_notice=notice)

    def normalize(self, raw: RawEvent, ctx: NormalizeContext) -> list[Event]:
        """The thin `gcal.calendar.changed`; the worker's enrich makes the real events."""
        headers = raw.headers
        calendar = calendar_of(headers)
        gcal = {
            "calendar_id": calendar,
            "channel_id": headers.get("x-goog-channel-id"),
            "resource_id": headers.get("x-goog-resource-id"),
            "resource_state": headers.get("x-goog-resource-state"),
            "message_number": headers.get("x-goog-message-number"),
            "channel_expiration": headers.get("x-goog-channel-expiration"),
        }
        return [
            Event(
                id=event_id_for("gcal", raw.provider_delivery_id),
                source=f"gcal/{calendar}",
                type="gcal.calendar.changed",
                subject=f"calendar/{calendar}",
                time=raw.received_at,
                entity=Entity(kind="calendar", id=calendar),
                fields={"gcal": gcal},
                raw={k: v for k, v in gcal.items() if v is not None},  # never the token
            )
        ]

    # --- enrichment in the worker ------------------------------------------------------

    def coalesce_key(self, event: Event) -> str | None:
        """A burst of notifications for one calendar is one sync."""
        if event.type != "gcal.calendar.changed" or self._reader is None:
            return None
        return f"calendar:{event.entity.id}"

    async def enrich(self, events: Sequence[Event], ctx: EnrichContext) -> list[Event]:
        """Sync the calendar once and emit an event per changed calendar event."""
        reader = self._reader
        if not events or self.coalesce_key(events[0]) is None or reader is None:
            return list(events)
        calendar = events[0].entity.id
        known = await self._from_known_channels(events, calendar, ctx)
        if not known:
            return []
        thin = known[-1]
        reconciling = all(_state(e) == RECONCILE_STATE for e in known)
        state_key = f"gcal:sync:{calendar}"
        state = await asyncio.to_thread(ctx.snapshots.get, state_key)
        token = state.get("sync_token") if state else None
        # Synced before but no token kept (Google gave none): compare, do not stay silent.
        mode = (
            "incremental" if isinstance(token, str) and token else "resync" if state else "initial"
        )
        try:
            try:
                items, next_token = await reader.list_events(ctx, calendar, token or None)
            except SyncTokenGone:
                mode = "resync"
                items, next_token = await reader.list_events(ctx, calendar, None)
        except ApiFailure as exc:
            if exc.retryable:
                raise RetryLater(f"Google Calendar: {exc.message}", after_s=exc.after_s) from exc
            if reconciling:  # every few minutes: pushes report it, a log line is enough here
                log.warning("reconciling calendar %s failed: %s", calendar, exc.message)
                return []
            gcal = {**thin.fields.get("gcal", {}), "fetch_error": exc.message}
            return [replace(thin, fields={**thin.fields, "gcal": gcal})]
        out: list[Event] = []
        for item in items:
            event = await self._compare(item, calendar, thin, mode, ctx)
            if event is not None:
                out.append(event)
        await asyncio.to_thread(
            ctx.snapshots.put,
            state_key,
            {"sync_token": next_token, "mode": mode},
            version=None,
            now=ctx.clock.now().timestamp(),
        )
        return out

    async def _from_known_channels(
        self, events: Sequence[Event], calendar: str, ctx: EnrichContext
    ) -> list[Event]:
        """The thin events to sync for: reconciliation notices, and pushes from a channel
        the hub opened for this calendar (current, or replaced and not expired). Others
        come from a channel nobody can stop any more (a second scheduler's, before
        renewal took a lease) or not opened by this hub: dropped, with a log line."""
        if self._channels is None:
            return list(events)
        saved = (await self._channels.saved(ctx)).get(calendar)
        now = ctx.clock.now()
        known: list[Event] = []
        for event in events:
            gcal = event.fields.get("gcal") or {}
            channel_id = str(gcal.get("channel_id") or "")
            if _state(event) == RECONCILE_STATE or self._channels.accepts(saved, channel_id, now):
                known.append(event)
            else:
                log.warning(
                    "dropped push %s for calendar %s: channel %s is not one this hub has "
                    "open for it (a leftover channel: it lapses by itself; or one opened "
                    "without `switchboard gcal watch`)",
                    event.id,
                    calendar,
                    channel_id or "(none)",
                )
        return known

    async def _remember(
        self, item: Mapping[str, Any], calendar: str, ctx: EnrichContext
    ) -> tuple[dict[str, Any] | None, dict[str, Any]] | None:
        """Keep the item's snapshot; (previous, new) when it changed, else None."""
        item_id = str(item.get("id") or "")
        if not item_id:
            return None
        key = f"gcal:event:{calendar}:{item_id}"
        previous = await asyncio.to_thread(ctx.snapshots.get, key)
        cancelled = item.get("status") == "cancelled"
        if cancelled and previous is None:
            return None  # never seen alive: nobody was told it existed
        # A deleted event comes as {id, status: cancelled}: keep what it was, for templates.
        snapshot = (
            {**(previous or {}), "status": "cancelled"} if cancelled else event_snapshot(item)
        )
        if previous == snapshot:
            return None
        await asyncio.to_thread(
            ctx.snapshots.put,
            key,
            snapshot,
            version=text_or_none(item.get("updated")),
            now=ctx.clock.now().timestamp(),
        )
        return previous, snapshot

    async def _compare(
        self, item: Mapping[str, Any], calendar: str, thin: Event, mode: str, ctx: EnrichContext
    ) -> Event | None:
        """The event for one changed item (None: nothing worth telling); keeps its snapshot."""
        remembered = await self._remember(item, calendar, ctx)
        if remembered is None or mode == "initial":
            return None  # unchanged; or the first sync, which only learns what is there
        previous, snapshot = remembered
        cancelled = item.get("status") == "cancelled"
        changes = {
            name: {"from": (previous or {}).get(name), "to": snapshot.get(name)}
            for name in TRACKED
            if (previous or {}).get(name) != snapshot.get(name)
        }
        if not changes and previous is not None:
            return None
        verb = "cancelled" if cancelled else "created" if previous is None else "updated"
        return self._event(item, snapshot, changes, verb, calendar, thin, mode)

    def _event(
        self,
        item: Mapping[str, Any],
        snapshot: Mapping[str, Any],
        changes: dict[str, dict[str, Any]],
        verb: str,
        calendar: str,
        thin: Event,
        mode: str,
    ) -> Event:
        item_id = str(item["id"])
        version = text_or_none(item.get("etag")) or text_or_none(item.get("updated")) or thin.id
        creator = mapping(item.get("creator"))
        private = (item.get("extendedProperties") or {}).get("private") or {}
        fields = {
            **snapshot,
            "html_link": text_or_none(item.get("htmlLink")) or snapshot.get("html_link"),
            "meet_link": text_or_none(item.get("hangoutLink")) or snapshot.get("meet_link"),
            "recurring_event_id": text_or_none(item.get("recurringEventId")),
            "switchboard_entity": private.get("switchboardEntity"),
            "gcal": {"calendar_id": calendar, "sync": mode, "notification": thin.id},
        }
        return Event(
            id=event_id_for("gcal", f"{calendar}|{item_id}|{version}"),
            source=f"gcal/{calendar}",
            type=f"gcal.event.{verb}",
            subject=f"event/{item_id}",
            time=parse_time(item.get("updated")) or thin.time,
            entity=Entity(
                kind=self._kinds.get(calendar, "calendar_event"),
                id=item_id,
                url=fields["html_link"],
                title=snapshot.get("summary"),
            ),
            actor=Actor(
                email=text_or_none(creator.get("email")),
                name=text_or_none(creator.get("displayName")),
            )
            if verb == "created"
            else Actor(),
            changes=changes,
            fields=fields,
            raw=dict(item),
        )


def event_snapshot(item: Mapping[str, Any]) -> dict[str, Any]:
    """What rules compare of a calendar event: plain values, attendees as sorted emails."""
    attendees = [a for a in item.get("attendees") or [] if isinstance(a, Mapping)]
    start, end, organizer = (mapping(item.get(k)) for k in ("start", "end", "organizer"))
    return {
        "summary": text_or_none(item.get("summary")),
        "description": text_or_none(item.get("description")),
        "location": text_or_none(item.get("location")),
        "start": text_or_none(start.get("dateTime")) or text_or_none(start.get("date")),
        "end": text_or_none(end.get("dateTime")) or text_or_none(end.get("date")),
        "all_day": "date" in start and "dateTime" not in start,
        "timezone": text_or_none(start.get("timeZone")),
        "status": text_or_none(item.get("status")),
        "attendees": sorted(str(a["email"]) for a in attendees if a.get("email")),
        "responses": {
            str(a["email"]): a.get("responseStatus") for a in attendees if a.get("email")
        },
        "organizer": text_or_none(organizer.get("email")),
        "html_link": text_or_none(item.get("htmlLink")),
        "meet_link": text_or_none(item.get("hangoutLink")),
    }
