"""Inbounds: the webhooks as received, claimed for processing, then finished.

An inbound is the raw request, before normalization into events (hub/events.py): the types
say so (`NewInbound`, `InboundRow`, `InboundStore`); the table keeps the older name `events`.
Its row (`events`) and its request as it came (`event_bodies`) are written in one
transaction; finishing it records the deliveries it planned in the same one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, insert, select
from sqlalchemy.exc import DBAPIError

from hub.store import statements as sql
from hub.store.deliveries import DeliveryStore, NewDelivery
from hub.store.driver import DriverStatement
from hub.store.engine import EagerWriter, dump_json, guard, insert_ignore_factory
from hub.store.tables import event_bodies, events


@dataclass(frozen=True, slots=True, kw_only=True)
class NewInbound:
    """An inbound as ingress stores it."""

    id: str
    source: str
    provider_delivery_id: str
    received_at: float
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class InsertOutcome:
    id: str
    duplicate: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundRow:
    """An inbound as stored: its row with its request (empty once pruned)."""

    id: str
    source: str
    provider_delivery_id: str
    status: str
    received_at: float
    headers: dict[str, str]
    body: bytes
    normalized: list[dict[str, Any]] | None
    error: str | None
    attempts: int


class InboundStore:
    """The `events` and `event_bodies` tables; `Store` delegates to one of these."""

    def __init__(self, engine: Engine, deliveries: DeliveryStore) -> None:
        self.engine = engine
        self._deliveries = deliveries
        # Built once: see hub.store.statements for why.
        self._insert_events = insert_ignore_factory(engine)(events).returning(
            events.c.id, sort_by_parameter_order=True
        )
        self._insert_bodies = insert(event_bodies)
        self._sqlite = engine.dialect.name == "sqlite"
        self._write_eagerly = EagerWriter(engine)

    def close(self) -> None:
        self._write_eagerly.close()

    def insert(self, batch: Sequence[NewInbound]) -> list[InsertOutcome]:
        if not batch:
            return []
        firsts: dict[str, NewInbound] = {}
        for e in batch:
            firsts.setdefault(e.id, e)

        def write(conn: Connection) -> set[str]:
            if self._sqlite:
                return _insert_sqlite(conn, firsts.values())
            values = [event_values(e) for e in firsts.values()]
            inserted = set(conn.scalars(self._insert_events, values))
            if inserted:
                conn.execute(
                    self._insert_bodies,
                    [body_values(e) for e in firsts.values() if e.id in inserted],
                )
            return inserted

        with guard("store accepted events"):
            inserted = self._write_eagerly(write)
        out: list[InsertOutcome] = []
        for e in batch:
            out.append(InsertOutcome(e.id, duplicate=e.id not in inserted))
            inserted.discard(e.id)  # a second copy in the same batch is a duplicate
        return out

    def get(self, event_id: str) -> InboundRow | None:
        with guard("read an event"), self.engine.connect() as conn:
            row = conn.execute(_EVENT_WITH_BODY, {"b_id": event_id}).mappings().first()
        if row is None:
            return None
        return row_to_event(row, row if row["body"] is not None else None)

    def finish(
        self,
        event_id: str,
        *,
        now: float,
        normalized: list[dict[str, Any]] | None,
        new_deliveries: list[NewDelivery],
        error: str | None,
    ) -> list[str]:
        with guard("record a processed event"), self.engine.begin() as conn:
            pending = self._deliveries.insert(conn, event_id, new_deliveries, now)
            conn.execute(
                sql.FINISH_EVENT,
                {
                    "b_id": event_id,
                    "b_status": "failed" if error else "processed",
                    "b_normalized": normalized,
                    "b_error": error,
                    "b_now": now,
                },
            )
        return pending

    def count(self, status: str | None = None) -> int:
        query = select(func.count()).select_from(events)
        if status is not None:
            query = query.where(events.c.status == status)
        with guard("count events"), self.engine.connect() as conn:
            return int(conn.scalar(query) or 0)


#: Ingress's insert on SQLite, as the driver's own statements (see `_insert_sqlite`).
_SQLITE_INSERT_EVENT = (
    "INSERT OR IGNORE INTO events (id, source, provider_delivery_id, status, received_at,"
    " attempts) VALUES (?, ?, ?, 'received', ?, 0)"
)
_SQLITE_INSERT_BODY = "INSERT INTO event_bodies (event_id, headers, body) VALUES (?, ?, ?)"


def _insert_sqlite(conn: Connection, batch: Iterable[NewInbound]) -> set[str]:
    """Ingress's rows through sqlite3's cursor, in `conn`'s transaction: the ids inserted.

    This is the hottest write in the hub (every webhook, on the commit path ingress
    waits for), and SQLAlchemy's compile, bind and RETURNING machinery around it cost
    more than SQLite's insert: ~20 µs of ~75 per row in batches of 16. A plain INSERT
    OR IGNORE per row says by its rowcount whether the row is new. The columns are those
    of `event_values` and `body_values`; headers are stored as the JSON column stores
    them (`dump_json`), and tests read the rows back through the store.
    """
    driver: Any = conn.connection.driver_connection
    cursor = driver.cursor()
    fresh = []
    try:
        for e in batch:
            row = (e.id, e.source, e.provider_delivery_id, e.received_at)
            cursor.execute(_SQLITE_INSERT_EVENT, row)
            if cursor.rowcount == 1:
                fresh.append(e)
        cursor.executemany(
            _SQLITE_INSERT_BODY, [(e.id, dump_json(e.headers), e.body) for e in fresh]
        )
    except sqlite3.Error as exc:  # as SQLAlchemy's: the lock poll and `guard` expect those
        raise DBAPIError.instance(_SQLITE_INSERT_EVENT, None, exc, sqlite3.Error) from exc
    finally:
        cursor.close()
    return {e.id for e in fresh}


def event_values(e: NewInbound) -> dict[str, Any]:
    """The `events` row of a newly received inbound (its body goes to `body_values`)."""
    return {
        "id": e.id,
        "source": e.source,
        "provider_delivery_id": e.provider_delivery_id,
        "status": "received",
        "received_at": e.received_at,
        "attempts": 0,
    }


def body_values(e: NewInbound) -> dict[str, Any]:
    """The `event_bodies` row of a newly received inbound: the request as it came."""
    return {"event_id": e.id, "headers": e.headers, "body": e.body}


_PAYLOADS = DriverStatement(
    select(event_bodies).where(event_bodies.c.event_id.in_(bindparam("b_ids", expanding=True)))
)
_EVENT_WITH_BODY = (
    select(events, event_bodies.c.headers, event_bodies.c.body)
    .select_from(events.outerjoin(event_bodies, event_bodies.c.event_id == events.c.id))
    .where(events.c.id == bindparam("b_id"))
)


def event_payloads(conn: Connection, ids: Sequence[str]) -> dict[str, Any]:
    """The stored headers and body of each of `ids`, in one SELECT; pruned ones are absent."""
    if not ids:
        return {}
    return {r["event_id"]: r for r in _PAYLOADS.rows(conn, {"b_ids": list(ids)})}


def row_to_event(row: Any, payload: Any | None) -> InboundRow:
    """An `events` row with its `event_bodies` row; None for a pruned payload (empty)."""
    return InboundRow(
        id=row["id"],
        source=row["source"],
        provider_delivery_id=row["provider_delivery_id"],
        status=row["status"],
        received_at=row["received_at"],
        headers=dict(payload["headers"]) if payload is not None else {},
        body=bytes(payload["body"]) if payload is not None else b"",
        normalized=row["normalized"],
        error=row["error"],
        attempts=row["attempts"],
    )
