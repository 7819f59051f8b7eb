"""The durable store (SQLAlchemy Core): the source of truth for events and deliveries."""

from __future__ import annotations

from hub.store.store import (
    AttemptRecord,
    DeliveryRow,
    EventRow,
    InsertOutcome,
    NewDelivery,
    NewEvent,
    Store,
    open_store,
)

__all__ = [
    "AttemptRecord",
    "DeliveryRow",
    "EventRow",
    "InsertOutcome",
    "NewDelivery",
    "NewEvent",
    "Store",
    "open_store",
]
