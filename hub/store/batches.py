"""The pipeline's batch statements: claim, finish and record many rows in one statement.

The unit of work is a batch (DESIGN §1): each stage reads its rows with one statement and
writes its results in one transaction. Every function here takes an open `Connection`,
so the process's one writer (hub/pipeline/writer.py) can put several of them in a single
transaction. Claims test each row as a single claim would (due, not leased, first in line
for its entity, with the order checks of hub/store/statements.py), so a batch means
nothing else than rows taken together; `Store.claim_event`, `claim_delivery` and
`claim_hint` are these functions for one id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, bindparam, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from hub.store import statements as sql
from hub.store.deliveries import (
    BLOCKED_RECHECK_S,
    DELIVERY_VALUE_COLUMNS,
    ORDERING_RECHECK_S,
    READY_RECHECK_S,
    AttemptRecord,
    DeliveryRow,
    NewDelivery,
    delivery_values,
    row_to_delivery,
)
from hub.store.driver import DriverStatement, on_driver
from hub.store.events import InboundRow, event_payloads, row_to_event
from hub.store.tables import deliveries, events

#: An open transaction, as the writer hands it to the functions here.
Transaction = Connection

_IDS: Any = bindparam("b_ids", expanding=True)

# A batch is claimed by id; its status terms are only checks. Unindexed, or SQLite looked
# claims of three ids or more up through the status index: every event still received,
# every delivery due, i.e. the whole backlog per claim (statements.unindexed).
_EVENT_STATUS = sql.unindexed(events.c.status)
_DELIVERY_STATUS = sql.unindexed(deliveries.c.status)
_EVENT_CLAIMABLE = or_(
    _EVENT_STATUS == "received",
    and_(_EVENT_STATUS == "processing", events.c.lease_until < bindparam("b_now")),
)
_DELIVERY_CLAIMABLE = and_(
    or_(
        and_(
            _DELIVERY_STATUS == "pending",
            deliveries.c.next_attempt_at <= bindparam("b_now"),
        ),
        and_(_DELIVERY_STATUS == "sending", deliveries.c.lease_until < bindparam("b_now")),
    ),
    ~sql.HAS_PREDECESSOR,
    ~sql.EARLIER_EVENT_UNPROCESSED,
)


def _claim(table: Any, claimable: Any, values: dict[str, Any], locking: bool) -> Any:
    """UPDATE … WHERE id IN (ids) AND claimable RETURNING *, built once per dialect.

    PostgreSQL: the rows are picked `FOR UPDATE SKIP LOCKED`, so two workers holding
    overlapping batches (a redelivered message, a sweep) each take the rows the other
    does not hold instead of queueing behind its transaction. SQLite has one writer.
    """
    if locking:
        picked = (
            select(table.c.id)
            .where(table.c.id.in_(_IDS), claimable)
            .with_for_update(skip_locked=True, of=table)
            .correlate(None)
        )
        where = table.c.id.in_(picked)
    else:
        where = and_(table.c.id.in_(_IDS), claimable)
    return update(table).where(where).values(**values).returning(*table.c)


_CLAIM_EVENTS = {
    locking: DriverStatement(
        _claim(
            events,
            _EVENT_CLAIMABLE,
            {
                "status": "processing",
                "lease_until": bindparam("b_until"),
                "attempts": events.c.attempts + 1,
            },
            locking,
        )
    )
    for locking in (False, True)
}
_CLAIM_DELIVERIES = {
    locking: DriverStatement(
        _claim(
            deliveries,
            _DELIVERY_CLAIMABLE,
            {
                "status": "sending",
                "lease_until": bindparam("b_until"),
                "attempts": deliveries.c.attempts + 1,
                "updated_at": bindparam("b_now"),
            },
            locking,
        )
    )
    for locking in (False, True)
}
_PENDING_OF_INBOUNDS = DriverStatement(
    select(deliveries.c.id, deliveries.c.connector, deliveries.c.inbound_id).where(
        deliveries.c.inbound_id.in_(_IDS), _DELIVERY_STATUS == "pending"
    )
)
_DEFER = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("b_id"), deliveries.c.status == "sending")
    .values(
        status="pending",
        next_attempt_at=bindparam("b_until"),
        lease_until=None,
        attempts=deliveries.c.attempts - 1,
        updated_at=bindparam("b_now"),
    )
)
_ENTITY_ROWS = DriverStatement(
    select(
        deliveries.c.id,
        deliveries.c.connector,
        deliveries.c.destination,
        deliveries.c.entity_key,
        deliveries.c.operation,
        deliveries.c.ref,
        deliveries.c.status,
        deliveries.c.seq,
        deliveries.c.updated_at,
    ).where(
        deliveries.c.entity_key.in_(_IDS),
        or_(
            and_(_DELIVERY_STATUS == "delivered", deliveries.c.ref.is_not(None)),
            _DELIVERY_STATUS == "pending",
        ),
    )
)
_HINT_ROWS = select(deliveries.c.id, deliveries.c.status, deliveries.c.next_attempt_at).where(
    deliveries.c.id.in_(_IDS)
)
_HAS_PREDECESSOR = select(deliveries.c.id).where(deliveries.c.id.in_(_IDS), sql.HAS_PREDECESSOR)
_EARLIER_UNPROCESSED = select(deliveries.c.id).where(
    deliveries.c.id.in_(_IDS), sql.EARLIER_EVENT_UNPROCESSED
)


def _locking(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


# --- process stage ---------------------------------------------------------------------


def claim_events(
    conn: Connection, ids: Sequence[str], *, now: float, lease_s: float
) -> list[InboundRow]:
    """Take the claimable events among `ids` (received, or processing past their lease)."""
    if not ids:
        return []
    bound = {"b_ids": list(ids), "b_now": now, "b_until": now + lease_s}
    rows = _CLAIM_EVENTS[_locking(conn)].rows(conn, bound)
    # The bodies live apart (a status change must not rewrite them): one SELECT for all.
    payloads = event_payloads(conn, [r["id"] for r in rows])
    order = {event_id: n for n, event_id in enumerate(ids)}
    claimed = (row_to_event(r, payloads.get(r["id"])) for r in rows)
    return sorted(claimed, key=lambda e: order.get(e.id, 0))


@dataclass(frozen=True, slots=True, kw_only=True)
class FinishedEvent:
    """What processing made of one event: its normalized documents, or why it failed."""

    id: str
    normalized: list[dict[str, Any]] | None
    error: str | None = None


def finish_events(
    conn: Connection,
    finished: Sequence[FinishedEvent],
    planned: Sequence[NewDelivery],
    *,
    now: float,
) -> list[tuple[str, str, str]]:
    """Insert every planned delivery and close every event; (id, connector, inbound id)
    of the deliveries now pending.

    Deliveries are unique on their idempotency key (ON CONFLICT DO NOTHING), so a batch
    processed twice after a crash plans nothing new, and the pending list still holds
    the first run's unsent rows.
    """
    if planned:
        rows = [delivery_values(d, now=now) for d in planned]
        if on_driver(conn):
            _INSERT_DELIVERIES_SQLITE.run_many(conn, rows)
        else:
            conn.execute(_INSERT_DELIVERIES[conn.dialect.name], rows)
    if finished:
        _FINISH_EVENT.run_many(
            conn,
            [
                {
                    "b_id": f.id,
                    "b_status": "failed" if f.error else "processed",
                    "b_normalized": f.normalized,
                    "b_error": f.error,
                    "b_now": now,
                }
                for f in finished
            ],
        )
    inbound = sorted({f.id for f in finished} | {d.inbound_id for d in planned})
    if not inbound:
        return []
    pending = _PENDING_OF_INBOUNDS.rows(conn, {"b_ids": inbound})
    return [(r["id"], r["connector"], r["inbound_id"]) for r in pending]


_INSERT_DELIVERIES = {
    "sqlite": sqlite_insert(deliveries).on_conflict_do_nothing(),
    "postgresql": postgresql_insert(deliveries).on_conflict_do_nothing(),
}
_INSERT_DELIVERIES_SQLITE = DriverStatement(
    _INSERT_DELIVERIES["sqlite"], column_keys=DELIVERY_VALUE_COLUMNS
)
_FINISH_EVENT = DriverStatement(sql.FINISH_EVENT)
_RECORD_ATTEMPT = DriverStatement(sql.RECORD_ATTEMPT)
_FINISH_ATTEMPT = DriverStatement(sql.FINISH_ATTEMPT)
_SET_PARAMS = DriverStatement(sql.SET_PARAMS)


# --- deliver stage ---------------------------------------------------------------------


def claim_deliveries(
    conn: Connection, ids: Sequence[str], *, now: float, lease_s: float
) -> list[DeliveryRow]:
    """Take the due, unleased deliveries among `ids` that nothing earlier holds back."""
    if not ids:
        return []
    bound = {"b_ids": list(ids), "b_now": now, "b_until": now + lease_s}
    rows = _CLAIM_DELIVERIES[_locking(conn)].rows(conn, bound)
    return sorted((row_to_delivery(r) for r in rows), key=lambda d: (d.seq, d.id))


def claim_hints(
    conn: Connection, ids: Sequence[str], *, now: float
) -> dict[str, tuple[str, float]]:
    """Why each of `ids` could not be claimed, with seconds to come back in.

    The batch form of `Store.claim_hint`: ("early", until due), ("blocked", fallback)
    behind an earlier delivery, ("ordering", short) behind an unprocessed earlier event,
    ("ready", short) when nothing blocks it any more. Rows that are not pending (done,
    or leased by another worker) are left out: their message is dropped.
    """
    if not ids:
        return {}
    pending: list[str] = []
    hints: dict[str, tuple[str, float]] = {}
    for delivery_id, status, next_at in conn.execute(_HINT_ROWS, {"b_ids": list(ids)}):
        if status != "pending":
            continue
        if next_at > now:
            hints[delivery_id] = ("early", float(next_at - now))
        else:
            pending.append(delivery_id)
    if pending:
        blocked = set(conn.scalars(_HAS_PREDECESSOR, {"b_ids": pending}))
        ordering = set(conn.scalars(_EARLIER_UNPROCESSED, {"b_ids": pending})) - blocked
        for delivery_id in pending:
            if delivery_id in blocked:
                hints[delivery_id] = ("blocked", BLOCKED_RECHECK_S)
            elif delivery_id in ordering:
                hints[delivery_id] = ("ordering", ORDERING_RECHECK_S)
            else:
                hints[delivery_id] = ("ready", READY_RECHECK_S)
    return hints


def _same_target(row: dict[str, Any], connector: str, destination: str | None) -> bool:
    return bool(row["connector"] == connector and row["destination"] == destination)


def entity_refs(conn: Connection, rows: Iterable[DeliveryRow]) -> dict[str, dict[str, str]]:
    """For each row with an entity: the latest ref per operation of delivered sends for
    its entity and destination (keyed by delivery id). One statement for the batch."""
    wanted = [r for r in rows if r.entity_key is not None]
    if not wanted:
        return {}
    found = _ENTITY_ROWS.rows(conn, {"b_ids": sorted({str(r.entity_key) for r in wanted})})
    delivered = sorted(
        (f for f in found if f["status"] == "delivered"), key=lambda f: f["updated_at"]
    )
    out: dict[str, dict[str, str]] = {}
    for row in wanted:
        refs: dict[str, str] = {}
        for f in delivered:
            if f["entity_key"] == row.entity_key and _same_target(
                f, row.connector, row.destination
            ):
                refs[f["operation"] or ""] = f["ref"]
        out[row.id] = refs
    return out


def next_in_line(conn: Connection, rows: Iterable[DeliveryRow]) -> list[tuple[str, str]]:
    """(id, connector) of the earliest pending delivery for each finished row's entity
    and destination: it waited for this one and is woken now, not by the sweeper."""
    finished = [r for r in rows if r.entity_key is not None]
    if not finished:
        return []
    found = _ENTITY_ROWS.rows(conn, {"b_ids": sorted({str(r.entity_key) for r in finished})})
    waiting = sorted(
        (f for f in found if f["status"] == "pending"), key=lambda f: (f["seq"], f["id"])
    )
    out: dict[str, str] = {}
    for row in finished:
        for f in waiting:
            if f["entity_key"] == row.entity_key and _same_target(
                f, row.connector, row.destination
            ):
                out.setdefault(f["id"], f["connector"])
                break
    return sorted(out.items())


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptOutcome:
    """One finished attempt and the delivery's next state, recorded together."""

    delivery_id: str
    attempt: AttemptRecord
    status: str
    now: float
    next_attempt_at: float | None = None
    ref: str | None = None
    last_error: str | None = None
    params: dict[str, Any] | None = None


def record_attempts(conn: Connection, outcomes: Sequence[AttemptOutcome]) -> None:
    """Every attempt row and every delivery's new state, as three executemany calls."""
    if not outcomes:
        return
    _RECORD_ATTEMPT.run_many(
        conn,
        [
            {
                "b_delivery": o.delivery_id,
                "b_number": o.attempt.number,
                "b_started": o.attempt.started_at,
                "b_duration": o.attempt.duration_ms,
                "b_outcome": o.attempt.outcome,
                "b_status_code": o.attempt.status_code,
                "b_detail": o.attempt.detail,
            }
            for o in outcomes
        ],
    )
    _FINISH_ATTEMPT.run_many(
        conn,
        [
            {
                "b_id": o.delivery_id,
                "b_status": o.status,
                "b_now": o.now,
                "b_error": o.last_error,
                "b_next": o.next_attempt_at,
                "b_ref": o.ref,
            }
            for o in outcomes
        ],
    )
    with_params = [o for o in outcomes if o.params is not None]
    if with_params:
        _SET_PARAMS.run_many(
            conn,
            [{"b_id": o.delivery_id, "b_params": o.params, "b_now": o.now} for o in with_params],
        )


def set_params(conn: Connection, delivery_id: str, params: dict[str, Any], *, now: float) -> None:
    """Store params rendered again for a replayed delivery (hub/pipeline/rerender.py)."""
    conn.execute(sql.SET_PARAMS, {"b_id": delivery_id, "b_params": params, "b_now": now})


def defer_deliveries(
    conn: Connection, deferred: Sequence[tuple[str, float]], *, now: float
) -> None:
    """Hand claims back without counting an attempt: (id, due time) each."""
    if deferred:
        conn.execute(_DEFER, [{"b_id": d, "b_until": until, "b_now": now} for d, until in deferred])
