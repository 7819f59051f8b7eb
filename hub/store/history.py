"""What happened in a period, for rules' `store.query` steps (digests, weekly reports).

Reads only. Rows are scanned oldest first inside [since, until) and the scan is bounded,
so a report over a busy month costs a known amount of work, never the whole table.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Text, cast, select

from hub.store.queries import delivery_view, like_escape
from hub.store.store import Store
from hub.store.tables import deliveries, events

#: Inbound rows one step may read; each may hold several normalized events.
SCAN_LIMIT = 20_000
_BATCH = 500


def events_in_period(
    store: Store,
    *,
    since: float,
    until: float,
    source: str | None = None,
    type_prefix: str = "",
) -> Iterator[dict[str, Any]]:
    """Normalized events of processed webhooks received in [since, until), oldest first.

    `type_prefix` narrows the scan in SQL (the literal start of a type glob); callers test
    the full glob and conditions on what comes back.
    """
    conds: list[Any] = [
        events.c.received_at >= since,
        events.c.received_at < until,
        events.c.status == "processed",
    ]
    if source:
        conds.append(events.c.source == source)
    if type_prefix:
        pattern = f"%{like_escape(type_prefix)}%"
        conds.append(cast(events.c.normalized, Text).like(pattern, escape="\\"))
    position: tuple[float, str] | None = None
    scanned = 0
    while scanned < SCAN_LIMIT:
        where = list(conds)
        if position is not None:
            at, row_id = position
            where.append(
                (events.c.received_at > at)
                | ((events.c.received_at == at) & (events.c.id > row_id))
            )
        query = (
            select(events.c.id, events.c.received_at, events.c.normalized)
            .where(*where)
            .order_by(events.c.received_at, events.c.id)
            .limit(min(_BATCH, SCAN_LIMIT - scanned))
        )
        with store.guard("read event history"), store.engine.connect() as conn:
            rows = conn.execute(query).all()
        for row in rows:
            for document in row.normalized or []:
                if isinstance(document, dict):
                    yield document
        scanned += len(rows)
        if len(rows) < _BATCH:
            return
        position = (float(rows[-1].received_at), str(rows[-1].id))


def deliveries_in_period(
    store: Store,
    *,
    since: float,
    until: float,
    statuses: tuple[str, ...] = (),
    limit: int,
) -> list[dict[str, Any]]:
    """Deliveries created in [since, until), oldest first, as the API shows them."""
    conds: list[Any] = [deliveries.c.created_at >= since, deliveries.c.created_at < until]
    if statuses:
        conds.append(deliveries.c.status.in_(statuses))
    query = (
        select(deliveries)
        .where(*conds)
        .order_by(deliveries.c.created_at, deliveries.c.id)
        .limit(limit)
    )
    with store.guard("read delivery history"), store.engine.connect() as conn:
        rows = conn.execute(query).all()
    out = []
    for row in rows:
        view = delivery_view(row)
        out.append(
            {
                "id": view.id,
                "event_id": view.event_id,
                "rule": view.rule_id,
                "connector": view.connector,
                "destination": view.destination,
                "status": view.status,
                "attempts": view.attempts,
                "last_error": view.last_error,
                "created_at": view.created_at,
            }
        )
    return out
