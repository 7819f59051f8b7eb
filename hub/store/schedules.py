"""Store operations for the scheduler: claim a rule's tick once, across every scheduler.

A claim is an INSERT that ignores conflicts on (rule id, tick time): whichever scheduler's
row lands fires the tick, the others see no row inserted and do nothing. The claim and the
inbound event it fires are written in one transaction, so a crash leaves either both or
neither: a fired tick is never lost, and a restarted scheduler never fires it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, delete, func, select

from hub.store.engine import insert_ignore_factory
from hub.store.events import NewInbound, body_values, event_values
from hub.store.store import Store
from hub.store.tables import event_bodies, events, schedule_ticks


@dataclass(frozen=True, slots=True, kw_only=True)
class TickState:
    """What the store knows of one rule's schedule."""

    #: The newest claimed (fired or baseline) tick of the rule, whatever its spec.
    last_tick_at: float | None
    #: Has any scheduler seen this exact spec (cron + zone) before?
    spec_known: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class TickRow:
    rule_id: str
    tick_at: float
    spec: str
    status: str
    event_id: str | None
    scheduler: str | None
    claimed_at: float


def tick_state(store: Store, *, rule_id: str, spec: str) -> TickState:
    # One statement, so both answers come from the same snapshot: read separately, a
    # baseline committed in between would look like "spec known, nothing claimed yet".
    query = select(
        func.max(schedule_ticks.c.tick_at),
        func.max(case((schedule_ticks.c.spec == spec, 1), else_=0)),
    ).where(schedule_ticks.c.rule_id == rule_id)
    with store.guard("read schedule ticks"), store.engine.connect() as conn:
        last, known = conn.execute(query).one()
    return TickState(last_tick_at=float(last) if last is not None else None, spec_known=bool(known))


def mark_seen(store: Store, *, rule_id: str, spec: str, at: float, scheduler: str) -> None:
    """Record that `spec` is in force from `at` on: only ticks after `at` will fire."""
    _insert(store, "record a new schedule", _tick(rule_id, spec, at, "baseline", None, scheduler))


def skip_tick(store: Store, *, rule_id: str, spec: str, tick_at: float, scheduler: str) -> None:
    """Claim a tick without firing it (a missed occurrence of a `missed: none` rule)."""
    _insert(
        store, "skip a schedule tick", _tick(rule_id, spec, tick_at, "skipped", None, scheduler)
    )


def claim_tick(
    store: Store, *, rule_id: str, spec: str, tick_at: float, scheduler: str, event: NewInbound
) -> bool:
    """Claim the tick and store its event atomically; False when another scheduler has it."""
    insert = insert_ignore_factory(store.engine)
    row = _tick(rule_id, spec, tick_at, "fired", event.id, scheduler, claimed_at=event.received_at)
    # The claim is written first: a transaction that starts by writing takes SQLite's
    # write lock at once, so concurrent claimers queue up instead of failing to upgrade.
    with store.guard("claim a schedule tick"), store.engine.begin() as conn:
        # RETURNING, not rowcount: psycopg reports -1 for INSERT ... ON CONFLICT DO NOTHING.
        claimed = insert(schedule_ticks).values(**row).returning(schedule_ticks.c.rule_id)
        won = conn.execute(claimed).first() is not None
        if won:
            # The same rows ingress writes for an accepted webhook (Store.insert_events).
            conn.execute(insert(events).values(event_values(event)))
            conn.execute(insert(event_bodies).values(body_values(event)))
    return won


def prune_ticks(store: Store, *, rule_id: str, before: float) -> int:
    """Drop a rule's claims older than `before`; the newest always stays (it is the floor)."""
    newest = select(func.max(schedule_ticks.c.tick_at)).where(schedule_ticks.c.rule_id == rule_id)
    with store.guard("prune schedule ticks"), store.engine.begin() as conn:
        result = conn.execute(
            delete(schedule_ticks).where(
                schedule_ticks.c.rule_id == rule_id,
                schedule_ticks.c.tick_at < before,
                schedule_ticks.c.tick_at < newest.scalar_subquery(),
            )
        )
    return int(result.rowcount or 0)


def list_ticks(store: Store, *, rule_id: str | None = None) -> list[TickRow]:
    """Claims, oldest first (for the CLI, the dashboard and tests)."""
    query = select(schedule_ticks).order_by(schedule_ticks.c.tick_at)
    if rule_id is not None:
        query = query.where(schedule_ticks.c.rule_id == rule_id)
    with store.guard("list schedule ticks"), store.engine.connect() as conn:
        return [
            TickRow(
                rule_id=r["rule_id"],
                tick_at=r["tick_at"],
                spec=r["spec"],
                status=r["status"],
                event_id=r["event_id"],
                scheduler=r["scheduler"],
                claimed_at=r["claimed_at"],
            )
            for r in conn.execute(query).mappings()
        ]


def _tick(
    rule_id: str,
    spec: str,
    tick_at: float,
    status: str,
    event_id: str | None,
    scheduler: str,
    *,
    claimed_at: float | None = None,
) -> dict[str, Any]:
    return {
        "rule_id": rule_id,
        "tick_at": tick_at,
        "spec": spec,
        "status": status,
        "event_id": event_id,
        "scheduler": scheduler[:128],
        "claimed_at": tick_at if claimed_at is None else claimed_at,
    }


def _insert(store: Store, doing: str, row: dict[str, Any]) -> None:
    insert = insert_ignore_factory(store.engine)
    with store.guard(doing), store.engine.begin() as conn:
        conn.execute(insert(schedule_ticks).values(**row))
