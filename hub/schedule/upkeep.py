"""Periodic upkeep of sources: work no webhook triggers (renewing Google push channels,
syncing calendars whose pushes may have been lost).

A source that needs it defines `async maintain(ctx, secret)`, which may return raw events
to process as if they had been received (`RawEvent`s: stored here, deduplicated by id,
and enqueued for the workers). The scheduler service runs every such source's upkeep
every minute, in `serve` and in `switchboard scheduler`. Any number of schedulers run
it: work that must happen once takes a lease in the store (`ctx.shared.lease`), and
returned events with the same id are stored once. The composition hands it what it
works with (`UpkeepDeps`: hub/runtime.py's `Runtime` is one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from hub.clock import Clock
from hub.config import Settings
from hub.pipeline.http import make_client
from hub.pipeline.queue import Queue
from hub.sources.base import EnrichContext, RawEvent, Source, has_upkeep
from hub.store import NewInbound, Store
from hub.store.shared import StoreSharedState
from hub.store.snapshots import StoreSnapshots

log = logging.getLogger("switchboard.upkeep")


class UpkeepDeps(Protocol):
    """What upkeep and the scheduled backup work with, built once by the composition."""

    @property
    def settings(self) -> Settings: ...
    @property
    def store(self) -> Store: ...
    @property
    def queue(self) -> Queue: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def sources(self) -> Mapping[str, Source]: ...


@contextlib.asynccontextmanager
async def upkeep_context(store: Store, clock: Clock) -> AsyncIterator[EnrichContext]:
    """What a source's upkeep (or an admin command like `gcal watch`) works with outside
    a worker: its own HTTP client, the store's snapshots, and no shared budget (a handful
    of calls an hour)."""

    async def no_throttle(key: str, limits: object) -> None:
        return None

    async with make_client() as http:
        yield EnrichContext(
            clock=clock,
            http=http,
            snapshots=StoreSnapshots(store),
            throttle=no_throttle,
            shared=StoreSharedState(store),
        )


def run_upkeep(runtime: UpkeepDeps) -> int:
    """Run `maintain` of every source that has one; how many ran without an error.

    Also takes the scheduled backup when one is due (`backup:` in the config)."""
    if runtime.settings.backup is not None:
        try:
            take_scheduled_backup(runtime)
        except Exception:  # a failed backup must not stop the sources' upkeep
            log.exception("scheduled backup failed")
    maintained = [(name, source) for name, source in runtime.sources.items() if has_upkeep(source)]
    if not maintained:
        return 0

    async def run_all() -> int:
        done = 0
        async with upkeep_context(runtime.store, runtime.clock) as ctx:
            for name, source in maintained:
                settings = runtime.settings.sources.get(name)
                try:
                    raised = await source.maintain(ctx, settings.secret if settings else None)
                    await asyncio.to_thread(_receive, runtime, raised or [])
                    done += 1
                except Exception:  # one source's upkeep must not stop another's
                    log.exception("upkeep of source %s failed", name)
        return done

    return asyncio.run(run_all())


#: Lease of the scheduled backup, so two schedulers sharing a directory do not both write.
BACKUP_LEASE = "store-backup"
BACKUP_LEASE_S = 3600.0


def take_scheduled_backup(runtime: UpkeepDeps) -> Path | None:
    """The backup `backup:` asks for, when due; the new file or None."""
    from hub.schedule.scheduler import scheduler_name
    from hub.store.backup import backup_if_due

    config = runtime.settings.backup
    if config is None:
        return None
    shared = StoreSharedState(runtime.store)
    holder = scheduler_name()
    now = runtime.clock.now()
    if not shared.lease(BACKUP_LEASE, holder=holder, now=now.timestamp(), ttl_s=BACKUP_LEASE_S):
        return None
    try:
        taken = backup_if_due(
            runtime.settings.database_url,
            config.path,
            every_s=config.every_s,
            keep=config.keep,
            now=now,
        )
    finally:
        shared.release(BACKUP_LEASE, holder=holder, now=runtime.clock.now().timestamp())
    if taken is not None:
        log.info("scheduled backup written to %s", taken)
    return taken


def _receive(runtime: UpkeepDeps, raised: Sequence[RawEvent]) -> None:
    """Store what upkeep raised like received webhooks and enqueue the new ones."""
    if not raised:
        return
    outcomes = runtime.store.insert_events(
        [
            NewInbound(
                id=raw.id,
                source=raw.source,
                provider_delivery_id=raw.provider_delivery_id,
                received_at=raw.received_at.timestamp(),
                headers=dict(raw.headers),
                body=raw.body,
            )
            for raw in raised
        ]
    )
    new = [o.id for o in outcomes if not o.duplicate]
    if not new:
        return
    try:
        runtime.queue.enqueue_events(new)
    except Exception:  # the rows are durable; the worker's sweeper enqueues them later
        log.exception("broker enqueue failed for %d upkeep events", len(new))
