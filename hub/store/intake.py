"""Store reads for the task intake: which of a list's tasks the hub already has."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from hub.store.store import Store
from hub.store.tables import events

_CHUNK = 500  # bound the IN list (SQLite's variable limit, PostgreSQL's plan size)


def known_event_ids(store: Store, ids: Sequence[str]) -> set[str]:
    """The subset of `ids` already stored as events (for the dry-run preview)."""
    found: set[str] = set()
    with store.guard("look up intake tasks"), store.engine.connect() as conn:
        for start in range(0, len(ids), _CHUNK):
            chunk = list(ids[start : start + _CHUNK])
            found.update(conn.scalars(select(events.c.id).where(events.c.id.in_(chunk))))
    return found
