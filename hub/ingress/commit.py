"""Group commit for ingress: concurrent accepted requests share one transaction.

Each request waits for the batch that holds it to be durable, then gets its answer.
While one batch is being written, the next one fills up, so under load the cost of a
commit (and a broker round-trip) is spread over many requests without any added delay.
A batch's insert and its enqueue run in one call (one thread hop per batch, not two);
requests join a plain list and wake the writer with an event, which costs a request less
than an `asyncio.Queue` round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from hub.pipeline.queue import Queue
from hub.store import InsertOutcome, NewInbound, Store

log = logging.getLogger("switchboard.ingress")


@dataclass(slots=True)
class _Pending:
    event: NewInbound
    future: asyncio.Future[InsertOutcome]


class GroupCommitWriter:
    """Batch `NewInbound`s into store transactions, then enqueue the new ids."""

    def __init__(
        self, store: Store, queue: Queue, *, max_batch: int = 512, in_thread: bool = True
    ) -> None:
        self._store = store
        self._queue = queue
        self._max_batch = max_batch
        self._in_thread = in_thread
        self._pending: list[_Pending] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="group-commit-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def submit(self, event: NewInbound) -> InsertOutcome:
        """Return once `event` is durable (or known to be a duplicate)."""
        future: asyncio.Future[InsertOutcome] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(event, future))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                await self._commit(batch)
                if not self._in_thread:
                    # On the loop nothing could join while the batch was written: let the
                    # requests that arrived meanwhile be read before the next commit.
                    await asyncio.sleep(0)

    async def _commit(self, batch: list[_Pending]) -> None:
        events = [p.event for p in batch]
        try:
            if self._in_thread:
                outcomes = await asyncio.to_thread(self._write, events)
            else:
                outcomes = self._write(events)
        except Exception as exc:  # the requests get a 503 and the provider retries
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        for pending, outcome in zip(batch, outcomes, strict=True):
            if not pending.future.done():
                pending.future.set_result(outcome)

    def _write(self, events: Sequence[NewInbound]) -> list[InsertOutcome]:
        """Insert the batch, then enqueue its new ids (store first: a 202 is durable)."""
        outcomes = self._store.insert_events(events)
        new_ids = [o.id for o in outcomes if not o.duplicate]
        if new_ids:
            try:
                self._queue.enqueue_events(new_ids)
            except Exception:
                # The rows are durable; the sweeper enqueues them once the broker is back.
                log.exception(
                    "broker enqueue failed for %d events; the sweeper will retry", len(new_ids)
                )
        return outcomes
