"""Store operations for the dead-letter queue: find dead deliveries and send them again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from hub.store.store import Store
from hub.store.tables import deliveries, events


@dataclass(frozen=True, slots=True)
class Replayed:
    delivery_ids: list[tuple[str, str]]  # (id, connector)
    event_ids: list[str]
    skipped: list[str]  # delivered ones left alone (use force)


def replay(
    store: Store,
    ids: list[str],
    *,
    now: float,
    due_at: float,
    force: bool = False,
) -> Replayed:
    """Make deliveries (by delivery id or event id) pending again, due at `due_at`.

    A delivered delivery is only sent again with `force`, since that sends a duplicate
    wherever the destination has no idempotency. An event id also re-runs processing, so
    rules added since then can plan new deliveries (existing ones are unique by key).
    """
    replay_statuses = (
        ("dead", "skipped", "pending", "delivered") if force else ("dead", "skipped", "pending")
    )
    out: list[tuple[str, str]] = []
    events_out: list[str] = []
    skipped: list[str] = []
    with store.guard("replay deliveries"), store.engine.begin() as conn:
        for item in ids:
            is_event = conn.scalar(select(events.c.id).where(events.c.id == item)) is not None
            column = deliveries.c.inbound_id if is_event else deliveries.c.id
            rows = conn.execute(
                select(deliveries.c.id, deliveries.c.connector, deliveries.c.status).where(
                    column == item
                )
            ).all()
            for delivery_id, connector, status in rows:
                if status not in replay_statuses:
                    skipped.append(delivery_id)
                    continue
                # `attempts` and `created_at` are history: a replay adds attempts, it never
                # rewrites when the delivery was made or how often it was tried.
                conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id == delivery_id)
                    .values(
                        status="pending",
                        next_attempt_at=due_at,
                        lease_until=None,
                        updated_at=now,
                        **_fresh_retry_budget(now),
                    )
                )
                out.append((delivery_id, connector))
            if is_event:
                # lease_until marks when the replayed event is due for the sweeper.
                conn.execute(
                    update(events)
                    .where(events.c.id == item)
                    .values(status="received", lease_until=due_at)
                )
                events_out.append(item)
    return Replayed(out, events_out, skipped)


#: The columns that would give a replay a fresh retry budget without rewriting history:
#: the attempts made before it and when it happened. The delivery engine would then count
#: `attempts - retry_base_attempts` against max_attempts and the age from `retry_since`
#: (issue #19). Set here as soon as the table has them.
RETRY_BUDGET_COLUMNS = ("retry_base_attempts", "retry_since")


def _fresh_retry_budget(now: float) -> dict[str, Any]:
    if not all(name in deliveries.c for name in RETRY_BUDGET_COLUMNS):
        return {}
    return {"retry_base_attempts": deliveries.c.attempts, "retry_since": now}


def dead_since(store: Store, *, since: float, limit: int = 10_000) -> list[str]:
    query = (
        select(deliveries.c.id)
        .where(deliveries.c.status == "dead", deliveries.c.updated_at >= since)
        .order_by(deliveries.c.updated_at)
        .limit(limit)
    )
    with store.guard("list dead deliveries"), store.engine.connect() as conn:
        return list(conn.scalars(query))
