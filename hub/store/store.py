"""The store's front door: one `Store` per process, shared by threads.

Calls are synchronous and thread-safe; async code runs them with `asyncio.to_thread`.
`Store` holds the engine and the cipher and hands each call to its aggregate's module:
hub/store/events.py, hub/store/deliveries.py (with attempts), hub/store/sweep.py; the
engine itself (opening, SQLite's settings, the write lock, the error edge) is
hub/store/engine.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

from hub.errors import StoreError
from hub.store import batches, migrate, sweep
from hub.store.crypto import PLAIN, TokenCipher
from hub.store.deliveries import AttemptRecord, DeliveryRow, DeliveryStore, NewDelivery
from hub.store.engine import Guard, KeptConnection, guard, keyed_write, open_engine
from hub.store.events import InboundRow, InboundStore, InsertOutcome, NewInbound

T = TypeVar("T")


class Store:
    """All persistence; one instance per process, shared by threads."""

    #: Seals token fields of stored documents (hub/store/crypto.py); build_runtime sets it.
    cipher: TokenCipher = PLAIN

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._deliveries = DeliveryStore(engine)
        self._events = InboundStore(engine, self._deliveries)

    def create_schema(self) -> None:
        """Migrate the store to the newest schema (Alembic); concurrent starters take turns."""
        # Alembic logs its plugin set-up at INFO when first imported; migrate logs what ran.
        logging.getLogger("alembic").setLevel(logging.WARNING)
        migrate.upgrade(self.engine)

    def close(self) -> None:
        self._events.close()
        self.engine.dispose()

    def guard(self, doing: str) -> Guard:
        """Context manager turning SQLAlchemy errors into StoreError("could not <doing>")."""
        return guard(doing)

    def transact(self, write: Callable[[Connection], T], doing: str) -> T:
        """Run `write` in a transaction of its own; errors become StoreError("could not
        <doing>")."""
        with guard(doing), self.engine.begin() as conn:
            return write(conn)

    def kept_connection(self) -> KeptConnection:
        """Transactions on one connection for one thread (`transact` without the pool)."""
        return KeptConnection(self.engine)

    def keyed_write(self, key: str) -> AbstractContextManager[Connection]:
        """A transaction holding a lock on `key` from its first read (engine.keyed_write)."""
        return keyed_write(self.engine, key)

    # --- events -------------------------------------------------------------------

    def insert_events(self, batch: Sequence[NewInbound]) -> list[InsertOutcome]:
        """Insert a batch in one transaction; rows whose id exists are duplicates.

        The database says which rows it inserted (`ON CONFLICT DO NOTHING RETURNING id`):
        a row another ingress process commits at the same moment is a duplicate here,
        never a second "new" event. Only the inserted rows get their body written, in the
        same transaction (`event_bodies`).
        """
        return self._events.insert(batch)

    def get_event(self, event_id: str) -> InboundRow | None:
        return self._events.get(event_id)

    def claim_event(self, event_id: str, *, now: float, lease_s: float) -> InboundRow | None:
        """Take an event for processing; None if it is done or leased by someone else."""
        with guard("claim an event"), self.engine.begin() as conn:
            rows = batches.claim_events(conn, [event_id], now=now, lease_s=lease_s)
        return rows[0] if rows else None

    def finish_event(
        self,
        event_id: str,
        *,
        now: float,
        normalized: list[dict[str, Any]] | None,
        new_deliveries: Iterable[NewDelivery],
        error: str | None = None,
    ) -> list[str]:
        """Record the outcome and the deliveries in one transaction; return pending ids."""
        planned = list(new_deliveries)
        return self._events.finish(
            event_id, now=now, normalized=normalized, new_deliveries=planned, error=error
        )

    def count_events(self, status: str | None = None) -> int:
        return self._events.count(status)

    # --- deliveries and attempts ----------------------------------------------------

    def add_deliveries(
        self, inbound_id: str, planned: Iterable[NewDelivery], *, now: float
    ) -> list[str]:
        """Insert deliveries not tied to one inbound webhook (group digests); pending ids."""
        return self._deliveries.add(inbound_id, list(planned), now=now)

    def get_delivery(self, delivery_id: str) -> DeliveryRow | None:
        return self._deliveries.get(delivery_id)

    def list_deliveries(self, *, inbound_id: str | None = None) -> list[DeliveryRow]:
        return self._deliveries.list_rows(inbound_id=inbound_id)

    def claim_delivery(self, delivery_id: str, *, now: float, lease_s: float) -> DeliveryRow | None:
        """Take a due delivery for sending; None if done, not due, leased elsewhere, or
        waiting behind an earlier delivery for the same entity and destination (or behind
        an earlier event not yet processed, which may turn out to be for the same entity)."""
        with guard("claim a delivery"), self.engine.begin() as conn:
            rows = batches.claim_deliveries(conn, [delivery_id], now=now, lease_s=lease_s)
        return rows[0] if rows else None

    def open_delivery_connectors(self) -> set[str]:
        """Connectors with deliveries still to send (pending or being sent)."""
        return self._deliveries.open_connectors()

    def claim_hint(self, delivery_id: str, *, now: float) -> tuple[str, float] | None:
        """Why a pending delivery could not be claimed, with seconds to come back in:
        ("early", until due), ("ordering", short) behind an event still being processed,
        ("blocked", fallback) behind an earlier delivery, ("ready", short) when nothing blocks
        it any more; None when it is not pending (done, or leased by another worker)."""
        with guard("read a delivery"), self.engine.connect() as conn:
            return batches.claim_hints(conn, [delivery_id], now=now).get(delivery_id)

    def finish_attempt(
        self,
        delivery_id: str,
        attempt: AttemptRecord,
        *,
        status: str,
        now: float,
        next_attempt_at: float | None = None,
        ref: str | None = None,
        last_error: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        """Record one attempt and move the delivery to its next state; `params`, when
        given, replace the stored ones in the same transaction."""
        self._deliveries.finish_attempt(
            delivery_id,
            attempt,
            status=status,
            now=now,
            next_attempt_at=next_attempt_at,
            ref=ref,
            last_error=last_error,
            params=params,
        )

    def list_attempts(self, delivery_id: str) -> list[AttemptRecord]:
        return self._deliveries.list_attempts(delivery_id)

    # --- sweeping -----------------------------------------------------------------

    def stale_event_ids(self, *, now: float, older_than: float, limit: int = 500) -> list[str]:
        """Hand out events never picked up (or replayed), or whose processing lease ran out.

        A row is handed to one sweeper once per lease, so several workers' sweepers do not
        each re-enqueue it: the same statement that picks it marks it swept (see
        `sweep._sweep`). The mark is `lease_until = now` on a `received` row, where claims
        never look, and the row is stale again only when `older_than` (now - lease) passes
        it. An expired claim is released back to `received` (nobody holds it any more), so
        the worker that gets the message claims it at once.
        """
        return sweep.stale_event_ids(self.engine, now=now, older_than=older_than, limit=limit)

    def stale_deliveries(
        self, *, now: float, older_than: float, limit: int = 500
    ) -> list[tuple[str, str]]:
        """Hand out (id, connector) of due deliveries no queue seems to hold, or expired leases.

        Marked swept like events (`stale_event_ids`): `lease_until = now` on a `pending`
        row, which its claim ignores (it only needs next_attempt_at <= now), and an
        expired `sending` claim goes back to `pending` keeping its attempt count (the lost
        attempt may have reached the destination). next_attempt_at is left alone, so a
        swept row is exactly as due as before.
        """
        return sweep.stale_deliveries(self.engine, now=now, older_than=older_than, limit=limit)


def open_store(url: str) -> Store:
    """Open (and create if needed) the store at a SQLAlchemy URL."""
    engine = open_engine(url)
    store = Store(engine)
    for attempt in range(3):
        try:
            store.create_schema()
            break
        except StoreError as exc:
            # Processes starting together on a new SQLite file race CREATE TABLE; the
            # loser finds the table on its next look. Anything else is a real error.
            if "already exists" in str(exc) and attempt < 2:
                continue
            engine.dispose()
            raise
    return store
