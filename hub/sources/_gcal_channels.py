"""Google Calendar push channels for the gcal source: open, renew, stop, and reconcile.

Docs: https://developers.google.com/workspace/calendar/api/guides/push. Channels expire
(about a week) and cannot be extended, so renewing is opening a new one; Google delivers
to every open channel, so the one it replaces is stopped (`channels.stop`) as soon as
the new one is stored. Any number of schedulers run the same upkeep: a calendar's
channel is opened only under a lease in the store, and whoever gets the lease checks
again that the work is still due. Pushes are "not 100% reliable" (same guide), so each
watched calendar is also synced every `reconcile_interval`, through the same worker
path as a push.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from hub.events import event_id_for
from hub.sources._gcal_api import API_URL, ApiFailure, CalendarReader
from hub.sources.base import EnrichContext, RawEvent, SharedState

__all__ = [
    "CHANNELS_KEY",
    "RECONCILE_STATE",
    "ChannelBusy",
    "Channels",
    "reconcile_notice",
]

log = logging.getLogger("switchboard.sources.gcal")

#: Where the open push channels are remembered (calendar id -> channel).
CHANNELS_KEY = "gcal-channels"
#: One lease per calendar: only its holder opens or stops that calendar's channels.
LEASE_PREFIX = "gcal-channel-lease:"
#: Longer than an events.watch plus a channels.stop; a holder that dies frees it then.
LEASE_S = 120.0
#: Channels are renewed this long before they expire.
RENEW_BEFORE = timedelta(days=1)
DEFAULT_TTL_S = 7 * 24 * 3600.0
#: `X-Goog-Resource-State` of the hub's own reconciliation notices. Google never sends it,
#: and `verify` refuses it, so no request from outside can pass for one.
RECONCILE_STATE = "reconcile"


class ChannelBusy(ApiFailure):
    """Another scheduler holds the calendar's channel lease right now (an ApiFailure, so
    `switchboard gcal` reports it like Google's own refusals)."""

    def __init__(self, calendar: str) -> None:
        super().__init__(
            f"another scheduler is opening or stopping the channel of calendar {calendar} "
            f"right now; try again in {int(LEASE_S)} s",
            retryable=True,
        )


class Channels:
    """The stored channels of one grant, changed only under each calendar's lease.

    Stored per calendar: `{id, resourceId, expiration (epoch ms), address, ttl_s,
    retired: [{id, resourceId, expiration, stopped}]}`. A retired channel's pushes are
    still accepted until it expires (some may be in flight when it is stopped); one
    whose `channels.stop` failed is stopped again at the next upkeep.
    """

    def __init__(self, reader: CalendarReader) -> None:
        self._reader = reader

    async def saved(self, ctx: EnrichContext) -> dict[str, dict[str, Any]]:
        stored = await asyncio.to_thread(ctx.snapshots.get, CHANNELS_KEY)
        return {k: v for k, v in (stored or {}).items() if isinstance(v, dict)}

    async def open(
        self,
        ctx: EnrichContext,
        calendar: str,
        *,
        address: str,
        token: str,
        ttl_s: float,
        due: Callable[[dict[str, Any] | None], bool] = lambda _: True,
    ) -> dict[str, Any] | None:
        """Open a channel for `calendar` and stop the one it replaces; Google's answer,
        or None when `due(current channel)` no longer holds under the lease (another
        scheduler renewed it first). Raises ChannelBusy and ApiFailure."""
        async with self._lease(ctx, calendar):
            current = (await self.saved(ctx)).get(calendar)
            if not due(current):
                return None
            answer = await self._reader.watch(
                ctx,
                calendar,
                address=address,
                channel_token=token,
                channel_id=str(uuid.uuid4()),
                ttl_s=ttl_s,
            )
            retired = list((current or {}).get("retired") or [])
            if current and current.get("id"):
                retired.append({**_identity(current), "stopped": False})
            entry = {
                **_identity(answer),
                "address": address,
                "ttl_s": ttl_s,
                "retired": retired,
            }
            await self._write(ctx, calendar, entry)
            await self._stop_retired(ctx, calendar)
            return answer

    async def stop(self, ctx: EnrichContext, calendar: str) -> bool:
        """Stop every channel of `calendar` and forget them; False when none was open."""
        async with self._lease(ctx, calendar):
            current = (await self.saved(ctx)).get(calendar)
            if current is None:
                return False
            await self._stop_retired(ctx, calendar)
            await self._stop_one(ctx, current)
            await self._write(ctx, calendar, None)
            return True

    async def stop_retired(self, ctx: EnrichContext, calendar: str) -> None:
        """Retry the stops that failed before (under the lease; skipped when busy)."""
        try:
            async with self._lease(ctx, calendar):
                await self._stop_retired(ctx, calendar)
        except ChannelBusy:
            return

    def accepts(self, channel: dict[str, Any] | None, channel_id: str, now: datetime) -> bool:
        """Is `channel_id` this calendar's channel, or a retired one not yet expired?"""
        if channel is None or not channel_id:
            return False
        if channel.get("id") == channel_id:
            return True
        now_ms = now.timestamp() * 1000
        return any(
            old.get("id") == channel_id and _expiration_ms(old) > now_ms
            for old in channel.get("retired") or []
        )

    # --- helpers -----------------------------------------------------------------------

    async def _stop_retired(self, ctx: EnrichContext, calendar: str) -> None:
        current = (await self.saved(ctx)).get(calendar)
        if current is None:
            return
        now_ms = ctx.clock.now().timestamp() * 1000
        kept: list[dict[str, Any]] = []
        for old in current.get("retired") or []:
            if not old.get("stopped"):
                try:
                    await self._stop_one(ctx, old)
                    old = {**old, "stopped": True}
                    log.info("stopped the replaced push channel %s of %s", old.get("id"), calendar)
                except ApiFailure as exc:
                    log.warning(
                        "could not stop the replaced push channel %s of calendar %s (tried "
                        "again at the next upkeep): %s",
                        old.get("id"),
                        calendar,
                        exc,
                    )
            if not old.get("stopped") or _expiration_ms(old) > now_ms:
                kept.append(old)
        if kept != (current.get("retired") or []):
            await self._write(ctx, calendar, {**current, "retired": kept})

    async def _stop_one(self, ctx: EnrichContext, channel: dict[str, Any]) -> None:
        await self._reader.stop(
            ctx, channel_id=str(channel.get("id")), resource_id=str(channel.get("resourceId"))
        )

    async def _write(self, ctx: EnrichContext, calendar: str, entry: dict[str, Any] | None) -> None:
        """Change one calendar's entry; the others are left as they are in the store."""

        def change(doc: dict[str, Any] | None) -> dict[str, Any]:
            saved = dict(doc or {})
            if entry is None:
                saved.pop(calendar, None)
            else:
                saved[calendar] = entry
            return saved

        now = ctx.clock.now().timestamp()
        await asyncio.to_thread(_shared(ctx).update, CHANNELS_KEY, change, now=now)

    def _lease(self, ctx: EnrichContext, calendar: str) -> _Lease:
        return _Lease(ctx, LEASE_PREFIX + calendar, calendar)


class _Lease:
    """`async with`: hold the calendar's lease, or raise ChannelBusy."""

    def __init__(self, ctx: EnrichContext, key: str, calendar: str) -> None:
        self._ctx = ctx
        self._key = key
        self._calendar = calendar
        self._holder = uuid.uuid4().hex

    async def __aenter__(self) -> None:
        now = self._ctx.clock.now().timestamp()
        taken = await asyncio.to_thread(
            _shared(self._ctx).lease, self._key, holder=self._holder, now=now, ttl_s=LEASE_S
        )
        if not taken:
            raise ChannelBusy(self._calendar)

    async def __aexit__(self, *exc: object) -> None:
        now = self._ctx.clock.now().timestamp()
        await asyncio.to_thread(_shared(self._ctx).release, self._key, holder=self._holder, now=now)


def renewal_due(now: datetime) -> Callable[[dict[str, Any] | None], bool]:
    """Due when the stored channel expires within RENEW_BEFORE of `now`."""
    limit_ms = (now + RENEW_BEFORE).timestamp() * 1000

    def due(channel: dict[str, Any] | None) -> bool:
        return channel is not None and _expiration_ms(channel) <= limit_ms

    return due


def reconcile_notice(calendar: str, now: datetime, interval_s: float) -> RawEvent:
    """The hub's own "this calendar may have changed", as if pushed: one per calendar per
    interval slot (its delivery id), so several schedulers store it once."""
    slot = int(now.timestamp() // interval_s)
    provider_delivery_id = f"reconcile:{calendar}:{slot}"
    return RawEvent(
        id=event_id_for("gcal", provider_delivery_id),
        source="gcal",
        provider_delivery_id=provider_delivery_id,
        headers={
            "x-goog-resource-uri": f"{API_URL}/calendars/{quote(calendar, safe='')}/events",
            "x-goog-resource-state": RECONCILE_STATE,
            "x-goog-message-number": str(slot),
        },
        body=b"",
        received_at=now.astimezone(UTC),
    )


def _shared(ctx: EnrichContext) -> SharedState:
    if ctx.shared is None:
        raise RuntimeError("push channels change only in upkeep or `switchboard gcal`")
    return ctx.shared


def _identity(channel: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": channel.get("id"),
        "resourceId": channel.get("resourceId"),
        "expiration": channel.get("expiration"),
    }


def _expiration_ms(channel: dict[str, Any]) -> int:
    expiration = str(channel.get("expiration") or "0")
    return int(expiration) if expiration.isdigit() else 0
