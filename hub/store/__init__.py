"""The durable store (SQLAlchemy Core): the source of truth for events and deliveries."""

from __future__ import annotations

from hub.store.deliveries import AttemptRecord, DeliveryRow, NewDelivery
from hub.store.events import EventRow, InsertOutcome, NewEvent
from hub.store.store import Store, open_store

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
