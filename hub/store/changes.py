"""A change cursor for the live dashboard: the newest write to events and deliveries.

Workers in other processes write these rows, so the dashboard cannot wait for an
in-process signal; it compares this cursor instead. Three MAX() reads, each a scan
where no index covers the column: the live feed reads it at most twice a second per
process, however many browsers are watching.
"""

from __future__ import annotations

from sqlalchemy import func, select

from hub.store.store import Store
from hub.store.tables import deliveries, events

Cursor = tuple[float | None, float | None, float | None]


def change_cursor(store: Store) -> Cursor:
    """(newest event received, newest event processed, newest delivery update)."""
    with store.guard("read the change cursor"), store.engine.connect() as conn:
        row = conn.execute(
            select(
                select(func.max(events.c.received_at)).scalar_subquery(),
                select(func.max(events.c.processed_at)).scalar_subquery(),
                select(func.max(deliveries.c.updated_at)).scalar_subquery(),
            )
        ).one()
    return (row[0], row[1], row[2])
