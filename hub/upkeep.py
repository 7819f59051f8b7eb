"""Periodic upkeep of sources: work no webhook triggers (renewing Google push channels).

A source that needs it defines `async maintain(ctx, secret)`; the scheduler service runs
every such source's upkeep every few minutes, in `serve` and in `switchboard scheduler`.
Doing it twice (two schedulers) must be harmless, so upkeep needs no lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from hub.clock import Clock
from hub.http import make_client
from hub.runtime import Runtime
from hub.sources.base import EnrichContext
from hub.store import Store
from hub.store.snapshots import StoreSnapshots

log = logging.getLogger("switchboard.upkeep")


@contextlib.asynccontextmanager
async def upkeep_context(store: Store, clock: Clock) -> AsyncIterator[EnrichContext]:
    """What a source's upkeep (or an admin command like `gcal watch`) works with outside
    a worker: its own HTTP client, the store's snapshots, and no shared budget (a handful
    of calls an hour)."""

    async def no_throttle(key: str, limits: object) -> None:
        return None

    async with make_client() as http:
        yield EnrichContext(
            clock=clock, http=http, snapshots=StoreSnapshots(store), throttle=no_throttle
        )


def run_upkeep(runtime: Runtime) -> int:
    """Run `maintain` of every source that has one; how many ran without an error."""
    maintained = [
        (name, source)
        for name, source in runtime.sources.items()
        if callable(getattr(source, "maintain", None))
    ]
    if not maintained:
        return 0

    async def run_all() -> int:
        done = 0
        async with upkeep_context(runtime.store, runtime.clock) as ctx:
            for name, source in maintained:
                settings = runtime.settings.sources.get(name)
                try:
                    await source.maintain(ctx, settings.secret if settings else None)  # type: ignore[attr-defined]
                    done += 1
                except Exception:  # one source's upkeep must not stop another's
                    log.exception("upkeep of source %s failed", name)
        return done

    return asyncio.run(run_all())
