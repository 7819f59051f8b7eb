"""The durable store (SQLAlchemy Core): the source of truth for events and deliveries."""

from __future__ import annotations

from hub.store.deliveries import AttemptRecord, DeliveryRow, NewDelivery
from hub.store.events import InboundRow, InsertOutcome, NewInbound
from hub.store.store import Store, open_store

__all__ = [
    "AttemptRecord",
    "DeliveryRow",
    "InboundRow",
    "InsertOutcome",
    "NewDelivery",
    "NewInbound",
    "Store",
    "open_store",
]
