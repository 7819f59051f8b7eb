"""Sweeping: hand out events and deliveries that no queue seems to hold any more.

Several workers' sweepers run at once; each row goes to exactly one of them (`_sweep`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, and_, func, or_, select, update

from hub.store import statements as sql
from hub.store.engine import guard
from hub.store.tables import deliveries, events


def stale_event_ids(engine: Engine, *, now: float, older_than: float, limit: int) -> list[str]:
    """Events never picked up (or replayed), or whose lease ran out: `Store.stale_event_ids`."""
    cond = or_(
        and_(
            events.c.status == "received",
            # lease_until on a received row: when it was last handed out (sweep or
            # replay); without one, when it arrived (ingress enqueued it then).
            func.coalesce(events.c.lease_until, events.c.received_at) < older_than,
        ),
        and_(events.c.status == "processing", events.c.lease_until < now),
    )
    with guard("sweep stale events"), engine.begin() as conn:
        rows = _sweep(
            conn,
            events,
            cond,
            limit=limit,
            values={"status": "received", "lease_until": now},
            returning=(events.c.id,),
        )
    return [r[0] for r in rows]


def stale_deliveries(
    engine: Engine, *, now: float, older_than: float, limit: int
) -> list[tuple[str, str]]:
    """(id, connector) of due deliveries no queue holds: `Store.stale_deliveries`."""
    # A pending row behind an earlier one for its entity is woken when that one
    # finishes (and that one is swept itself if its message was lost): skip it here.
    cond = or_(
        and_(
            deliveries.c.status == "pending",
            deliveries.c.next_attempt_at < older_than,
            or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until < older_than),
            ~sql.HAS_PREDECESSOR,
        ),
        and_(deliveries.c.status == "sending", deliveries.c.lease_until < now),
    )
    with guard("sweep stale deliveries"), engine.begin() as conn:
        rows = _sweep(
            conn,
            deliveries,
            cond,
            limit=limit,
            values={"status": "pending", "lease_until": now},
            returning=(deliveries.c.id, deliveries.c.connector),
        )
    return [(r[0], r[1]) for r in rows]


def _sweep(
    conn: Any,
    table: Any,
    cond: Any,
    *,
    limit: int,
    values: dict[str, Any],
    returning: tuple[Any, ...],
) -> list[Any]:
    """Pick up to `limit` rows matching `cond` and mark them swept, in one statement.

    PostgreSQL: the pick is `FOR UPDATE SKIP LOCKED`, so a concurrent sweeper skips the
    rows this one holds, and a row it reaches after this one committed is re-checked
    against `cond` and no longer matches: each row goes to exactly one sweeper. A claim
    racing the sweep waits for it and then claims the marked row. SQLite has no row
    locks; the UPDATE takes its single write lock first, so sweepers simply queue.
    """
    picked = select(table.c.id).where(cond).limit(limit).correlate(None)
    if conn.dialect.name == "postgresql":
        picked = picked.with_for_update(skip_locked=True, of=table)
    sweep = update(table).where(table.c.id.in_(picked)).values(**values).returning(*returning)
    return list(conn.execute(sweep))
