"""Store operations for rule windows: throttle/dedupe counts and `group` collections."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select, update

from hub.store.store import Store
from hub.store.tables import group_events, groups, rule_firings


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupSlot:
    group_id: str
    flush_at: float
    opened: bool  # True when this event opened the group (schedule its flush)


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupBatch:
    group_id: str
    rule_id: str
    key: str
    events: list[dict[str, Any]]


def admit(
    store: Store,
    *,
    rule_id: str,
    kind: str,
    key: str,
    event_id: str,
    now: float,
    per_s: float,
    limit: int,
) -> bool:
    """May this event fire the rule? Counts firings per key in the trailing window."""
    with store.guard("check a rule window"), store.keyed_write(f"window:{rule_id}:{key}") as conn:
        already = conn.scalar(
            select(func.count())
            .select_from(rule_firings)
            .where(
                rule_firings.c.rule_id == rule_id,
                rule_firings.c.kind == kind,
                rule_firings.c.event_id == event_id,
            )
        )
        if already:
            return True  # counted when this event was first processed
        recent = conn.scalar(
            select(func.count())
            .select_from(rule_firings)
            .where(
                rule_firings.c.rule_id == rule_id,
                rule_firings.c.kind == kind,
                rule_firings.c.key == key,
                rule_firings.c.fired_at > now - per_s,
            )
        )
        if (recent or 0) >= limit:
            return False
        conn.execute(
            rule_firings.insert().values(
                rule_id=rule_id, kind=kind, event_id=event_id, key=key, fired_at=now
            )
        )
    return True


def add_to_group(
    store: Store,
    *,
    rule_id: str,
    key: str,
    event_id: str,
    event: dict[str, Any],
    now: float,
    window_s: float,
    max_events: int,
    max_wait_s: float | None = None,
) -> GroupSlot | None:
    """Put an event in the open group for (rule, key), opening one if needed.

    With `max_wait_s` the window slides: each event moves the flush to `window_s` after
    it, but never later than `max_wait_s` after the first (a debounce that cannot starve).
    None when the event was already collected (reprocessing after a crash).
    """
    lock = f"group:{rule_id}:{key}"
    with store.guard("collect an event into a group"), store.keyed_write(lock) as conn:
        if conn.scalar(
            select(group_events.c.group_id).where(
                group_events.c.rule_id == rule_id, group_events.c.event_id == event_id
            )
        ):
            return None
        row = conn.execute(
            select(groups.c.id, groups.c.flush_at, groups.c.count, groups.c.opened_at).where(
                groups.c.rule_id == rule_id,
                groups.c.key == key,
                groups.c.status == "open",
            )
        ).first()
        opened = row is None
        if row is None:
            group_id, flush_at, count = uuid.uuid4().hex, now + window_s, 0
            conn.execute(
                groups.insert().values(
                    id=group_id,
                    rule_id=rule_id,
                    key=key,
                    status="open",
                    opened_at=now,
                    flush_at=flush_at,
                    count=0,
                )
            )
        else:
            group_id, flush_at, count = row[0], row[1], row[2]
            if max_wait_s is not None:
                flush_at = max(flush_at, min(now + window_s, row[3] + max_wait_s))
        conn.execute(
            group_events.insert().values(
                rule_id=rule_id, event_id=event_id, group_id=group_id, position=count, event=event
            )
        )
        if count + 1 >= max_events:
            flush_at = min(flush_at, now)  # full: flush now rather than grow without bound
        conn.execute(
            update(groups).where(groups.c.id == group_id).values(count=count + 1, flush_at=flush_at)
        )
    return GroupSlot(group_id=group_id, flush_at=flush_at, opened=opened or flush_at <= now)


def claim_group(store: Store, group_id: str, *, now: float, lease_s: float) -> GroupBatch | None:
    """Take a due group for flushing; None if not due, already flushed or held elsewhere."""
    due = and_(
        groups.c.flush_at <= now,
        (groups.c.status == "open")
        | and_(groups.c.status == "flushing", groups.c.lease_until < now),
    )
    with store.guard("claim a group"), store.engine.begin() as conn:
        result = conn.execute(
            update(groups)
            .where(groups.c.id == group_id, due)
            .values(status="flushing", lease_until=now + lease_s)
        )
        if result.rowcount != 1:
            return None
        head = conn.execute(
            select(groups.c.rule_id, groups.c.key).where(groups.c.id == group_id)
        ).one()
        events = [
            r[0]
            for r in conn.execute(
                select(group_events.c.event)
                .where(group_events.c.group_id == group_id)
                .order_by(group_events.c.position)
            )
        ]
    return GroupBatch(group_id=group_id, rule_id=head[0], key=head[1], events=events)


def finish_group(store: Store, group_id: str, *, status: str = "flushed") -> None:
    with store.guard("finish a group"), store.engine.begin() as conn:
        conn.execute(
            update(groups).where(groups.c.id == group_id).values(status=status, lease_until=None)
        )


def group_due_in(store: Store, group_id: str, *, now: float) -> float | None:
    """Seconds until an open group is due, or None when it is not waiting to be flushed."""
    with store.guard("read a group"), store.engine.connect() as conn:
        row = conn.execute(
            select(groups.c.status, groups.c.flush_at).where(groups.c.id == group_id)
        ).first()
    if row is None or row[0] != "open" or row[1] <= now:
        return None
    return float(row[1] - now)


def postpone_group(store: Store, group_id: str, *, until: float) -> None:
    """Open a claimed group again, to flush at `until` (its source asked us to wait)."""
    with store.guard("postpone a group"), store.engine.begin() as conn:
        conn.execute(
            update(groups)
            .where(groups.c.id == group_id)
            .values(status="open", flush_at=until, lease_until=None)
        )


def due_groups(store: Store, *, now: float, limit: int = 500) -> list[str]:
    cond = and_(
        groups.c.flush_at <= now,
        (groups.c.status == "open")
        | and_(groups.c.status == "flushing", groups.c.lease_until < now),
    )
    with store.guard("find due groups"), store.engine.connect() as conn:
        return list(conn.scalars(select(groups.c.id).where(cond).limit(limit)))
