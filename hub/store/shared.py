"""State several processes change at once: documents edited atomically, and leases.

Rows live in the generic `snapshots` table (key -> JSON doc), so no table of their own;
token fields in them are sealed with the store's cipher (hub/store/crypto.py).
Any number of schedulers run the same upkeep (hub/schedule/upkeep.py); what must happen once
(opening a calendar's push channel) is done by whoever holds the lease.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from hub.store.store import Store
from hub.store.tables import snapshots


class StoreSharedState:
    """`SharedState` (hub/sources/base.py) over the store's `snapshots` table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def update(
        self,
        key: str,
        change: Callable[[dict[str, Any] | None], dict[str, Any]],
        *,
        now: float,
    ) -> dict[str, Any]:
        """Write `change(stored doc)` atomically; the written doc.

        For documents several processes edit (one entry each of a shared map): a plain
        get-then-put would let one writer drop the other's entry. The store's keyed
        write lock (BEGIN IMMEDIATE on SQLite, an advisory lock on PostgreSQL) makes
        the read and the write one step.
        """
        with self._store.guard("update shared state"), self._store.keyed_write(key) as conn:
            stored = _doc(conn, key)
            if stored is not None:
                stored = self._store.cipher.open_doc(stored)
            doc = change(dict(stored) if stored is not None else None)
            sealed = self._store.cipher.seal_doc(doc)
            _write(conn, key, sealed, now=now, exists=stored is not None)
        return doc

    def lease(self, key: str, *, holder: str, now: float, ttl_s: float) -> bool:
        """Take (or extend) the lease `key` for `ttl_s` unless someone else holds it.

        One row per lease ({holder, until}); of two racers exactly one wins. A holder
        that dies without `release` frees it at `until`.
        """
        with self._store.guard("take a lease"), self._store.keyed_write(key) as conn:
            stored = _doc(conn, key)
            held = stored or {}
            until = held.get("until")
            if (
                held.get("holder") not in (None, holder)
                and isinstance(until, int | float)
                and until > now
            ):
                return False
            doc = {"holder": holder, "until": now + ttl_s}
            _write(conn, key, doc, now=now, exists=stored is not None)
        return True

    def release(self, key: str, *, holder: str, now: float) -> None:
        """Give up the lease `key` if `holder` still holds it."""
        with self._store.guard("release a lease"), self._store.keyed_write(key) as conn:
            stored = _doc(conn, key)
            if stored is not None and stored.get("holder") == holder:
                _write(conn, key, {"holder": None, "until": now}, now=now, exists=True)


def _doc(conn: Connection, key: str) -> dict[str, Any] | None:
    doc = conn.scalar(select(snapshots.c.doc).where(snapshots.c.key == key))
    return dict(doc) if isinstance(doc, dict) else None


def _write(conn: Connection, key: str, doc: dict[str, Any], *, now: float, exists: bool) -> None:
    if exists:
        conn.execute(
            update(snapshots).where(snapshots.c.key == key).values(doc=doc, updated_at=now)
        )
    else:
        conn.execute(snapshots.insert().values(key=key, version=None, doc=doc, updated_at=now))
