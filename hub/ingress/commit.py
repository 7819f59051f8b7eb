"""Group commit for ingress: concurrent accepted requests share one transaction.

Each request waits for the batch that holds it to be durable, then gets its answer.
While one batch is being written, the next one fills up, so under load the cost of a
commit (and a broker round-trip) is spread over many requests without any added delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from hub.pipeline.queue import Queue
from hub.store import InsertOutcome, NewEvent, Store

log = logging.getLogger("switchboard.ingress")
A = TypeVar("A")
R = TypeVar("R")


@dataclass(slots=True)
class _Pending:
    event: NewEvent
    future: asyncio.Future[InsertOutcome]


class GroupCommitWriter:
    """Batch `NewEvent`s into store transactions, then enqueue the new ids."""

    def __init__(
        self, store: Store, queue: Queue, *, max_batch: int = 512, in_thread: bool = True
    ) -> None:
        self._store = store
        self._queue = queue
        self._max_batch = max_batch
        self._in_thread = in_thread
        self._inbox: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="group-commit-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def submit(self, event: NewEvent) -> InsertOutcome:
        """Return once `event` is durable (or known to be a duplicate)."""
        future: asyncio.Future[InsertOutcome] = asyncio.get_running_loop().create_future()
        await self._inbox.put(_Pending(event, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._inbox.get()]
            while len(batch) < self._max_batch and not self._inbox.empty():
                batch.append(self._inbox.get_nowait())
            await self._commit(batch)

    async def _call(self, fn: Callable[[A], R], arg: A) -> R:
        """Run a store or broker call in a thread, or on the loop (`server.group_commit`)."""
        if self._in_thread:
            return await asyncio.to_thread(fn, arg)
        return fn(arg)

    async def _commit(self, batch: list[_Pending]) -> None:
        try:
            outcomes = await self._call(self._store.insert_events, [p.event for p in batch])
        except Exception as exc:  # the requests get a 503 and the provider retries
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        new_ids = [o.id for o in outcomes if not o.duplicate]
        if new_ids:
            try:
                await self._call(self._queue.enqueue_events, new_ids)
            except Exception:
                # The rows are durable; the sweeper enqueues them once the broker is back.
                log.exception(
                    "broker enqueue failed for %d events; the sweeper will retry", len(new_ids)
                )
        for pending, outcome in zip(batch, outcomes, strict=True):
            if not pending.future.done():
                pending.future.set_result(outcome)
