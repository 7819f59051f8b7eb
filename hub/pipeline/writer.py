"""One writer per process: store transactions run on one thread, grouped when they can be.

Workers used to write from several threads at once (Dramatiq's worker threads, the loop's
executor), and those threads queued on SQLite's single write lock and on the GIL hand-offs
between them. Now every write of a worker process runs on this writer's one thread. Writes
submitted from the event loop while a transaction is running are committed together in
the next one (group commit, as ingress does), so a batch of sends that finish close
together costs one commit. A group whose transaction fails is retried one write at a
time, so one bad write fails alone.

The writer thread keeps one connection for all its transactions (`Store.kept_connection`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from hub.store import Store
from hub.store.batches import Transaction

log = logging.getLogger("switchboard.writer")
T = TypeVar("T")
Write = Callable[[Transaction], Any]

#: Writes per grouped transaction: bounds how long one commit holds the write lock.
MAX_GROUP = 256


@dataclass(slots=True)
class _Queued:
    write: Write
    doing: str
    future: asyncio.Future[Any]


class StoreWriter:
    """Runs store writes on one thread; `submit` groups, `call` runs one from any thread."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="switchboard-writer")
        self._queued: list[_Queued] = []
        self._flushing: asyncio.Task[None] | None = None
        self._kept = store.kept_connection()  # used on the writer thread only

    def call(self, write: Callable[[Transaction], T], doing: str) -> T:
        """Run `write` in a transaction of its own on the writer thread; wait for it."""
        return self._executor.submit(self._kept.transact, write, doing).result()

    async def run(self, write: Callable[[Transaction], T], doing: str) -> T:
        """Run `write` alone in a transaction on the writer thread (a claim: its caller
        needs the rows now, and grouping it would wait for a commit in progress)."""
        loop = asyncio.get_running_loop()
        result: T = await loop.run_in_executor(self._executor, self._kept.transact, write, doing)
        return result

    async def read(self, read: Callable[[Transaction], T], doing: str) -> T:
        """Run `read` on the writer thread's connection without taking the store's write
        turn (`KeptConnection.read`): reads in WAL mode wait for no writer."""
        loop = asyncio.get_running_loop()
        result: T = await loop.run_in_executor(self._executor, self._kept.read, read, doing)
        return result

    async def submit(self, write: Callable[[Transaction], T], doing: str) -> T:
        """Run `write` in the next grouped transaction; return once it is committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queued.append(_Queued(write, doing, future))
        if self._flushing is None or self._flushing.done():
            self._flushing = loop.create_task(self._flush(), name="store-writer-flush")
        return await future

    def close(self) -> None:
        self._executor.submit(self._kept.close)
        self._executor.shutdown(wait=True)

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queued:
            group, self._queued = self._queued[:MAX_GROUP], self._queued[MAX_GROUP:]
            try:
                results = await loop.run_in_executor(self._executor, self._group, group)
            except Exception:
                log.warning("a grouped write of %d failed; retrying each alone", len(group))
                for queued in group:
                    try:
                        result = await loop.run_in_executor(
                            self._executor, self._kept.transact, queued.write, queued.doing
                        )
                    except Exception as exc:
                        _settle(queued.future, exc=exc)
                    else:
                        _settle(queued.future, result=result)
                continue
            for queued, result in zip(group, results, strict=True):
                _settle(queued.future, result=result)

    def _group(self, group: list[_Queued]) -> list[Any]:
        doing = (
            group[0].doing if len(group) == 1 else f"{group[0].doing} (and {len(group) - 1} more)"
        )
        return self._kept.transact(lambda conn: [queued.write(conn) for queued in group], doing)


def _settle(
    future: asyncio.Future[Any], *, result: Any = None, exc: BaseException | None = None
) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
