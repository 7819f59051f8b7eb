"""Retention: drop old raw payloads and attempt logs in small batches.

Event rows themselves stay (their ids keep deduplicating provider retries, and the
deliveries still point at them); only the bulky parts go: an event's `event_bodies` row
(its headers and body) is deleted, and so are audit entries older than the same age.
Each batch is its own short
transaction, so pruning a large store never holds a long write lock over ingress.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from hub.store.audit import prune_audit
from hub.store.deliveries import TERMINAL_DELIVERY
from hub.store.engine import delete_in_batches
from hub.store.store import Store
from hub.store.tables import attempts, deliveries, event_bodies, events

#: Event statuses whose raw body is no longer needed for processing.
_DONE_EVENTS = ("processed", "failed")


@dataclass(frozen=True, slots=True)
class Pruned:
    payloads: int
    attempts: int
    audit: int = 0


def prune(store: Store, *, older_than: float, batch_size: int = 500) -> Pruned:
    """Delete the raw bodies and headers of finished events received before `older_than`,
    attempts (of finished deliveries) started before it, and audit entries from before it."""
    payloads = delete_in_batches(
        store.engine,
        event_bodies,
        event_bodies.c.event_id,
        select(event_bodies.c.event_id)
        .join(events, events.c.id == event_bodies.c.event_id)
        .where(events.c.received_at < older_than, events.c.status.in_(_DONE_EVENTS)),
        batch_size=batch_size,
        doing="prune raw payloads",
    )
    finished = select(deliveries.c.id).where(deliveries.c.status.in_(TERMINAL_DELIVERY))
    removed = delete_in_batches(
        store.engine,
        attempts,
        attempts.c.id,
        select(attempts.c.id).where(
            attempts.c.started_at < older_than, attempts.c.delivery_id.in_(finished)
        ),
        batch_size=batch_size,
        doing="prune attempts",
    )
    audit = prune_audit(store, older_than=older_than, batch_size=batch_size)
    return Pruned(payloads, removed, audit)
