"""Read-only queries for the API and dashboard: filtered, cursor-paginated lists.

Pages are keyset-paginated on (time, id), newest first, so a page stays stable while
webhooks keep arriving. Nothing here writes.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Generic, TypeVar

from sqlalchemy import Text, and_, cast, func, or_, select, union

from hub.store.deliveries import PlannedAction
from hub.store.store import Store
from hub.store.tables import deliveries, event_bodies, events, group_events, rule_firings

T = TypeVar("T")
MAX_LIMIT = 200
#: Rows a filtered page may examine before it returns short, with a cursor to go on.
_SCAN_LIMIT = 5000
_GLOB = "*?["


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundFilter:
    source: str | None = None
    type: str | None = None  # exact or glob: github.issues.*
    status: str | None = None
    since: float | None = None
    q: str | None = None
    limit: int = 50
    cursor: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundSummary:
    id: str
    source: str
    provider_delivery_id: str
    status: str
    received_at: float
    processed_at: float | None
    types: list[str]
    titles: list[str]
    error: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryFilter:
    status: str | None = None  # dead = the dead-letter queue
    connector: str | None = None
    destination: str | None = None
    rule: str | None = None
    event: str | None = None  # the inbound event id
    since: float | None = None
    limit: int = 50
    cursor: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryView(PlannedAction):
    status: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    ref: str | None
    created_at: float
    updated_at: float
    params: dict[str, Any] = field(default_factory=dict)


def encode_cursor(at: float, row_id: str) -> str:
    return base64.urlsafe_b64encode(f"{at!r}|{row_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """Raise ValueError for a cursor this module did not write."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, row_id = text.partition("|")
        return float(at), row_id
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"cursor {cursor!r} is not valid; pass next_cursor back as is") from exc


def list_events(store: Store, f: InboundFilter) -> Page[InboundSummary]:
    """Events newest first, filtered; `type` and `q` are checked in SQL and again in Python."""
    conds: list[Any] = []
    if f.source:
        conds.append(events.c.source == f.source)
    if f.status:
        conds.append(events.c.status == f.status)
    if f.since is not None:
        conds.append(events.c.received_at >= f.since)
    literal = glob_prefix(f.type) if f.type else ""
    if literal:
        conds.append(cast(events.c.normalized, Text).like(f"%{like_escape(literal)}%", escape="\\"))
    if f.q:
        needle = f"%{like_escape(f.q.lower())}%"
        in_body = (
            select(event_bodies.c.event_id)
            .where(
                event_bodies.c.event_id == events.c.id,
                func.lower(_body_text(store)).like(needle, escape="\\"),
            )
            .exists()
        )
        conds.append(
            or_(
                *(
                    func.lower(col).like(needle, escape="\\")
                    for col in (
                        events.c.id,
                        events.c.provider_delivery_id,
                        events.c.error,
                        cast(events.c.normalized, Text),
                    )
                ),
                in_body,
            )
        )
    wanted = f.type

    def keep(row: Any) -> bool:
        return wanted is None or any(fnmatchcase(t, wanted) for t in _types(row.normalized))

    columns = [
        events.c.id,
        events.c.source,
        events.c.provider_delivery_id,
        events.c.status,
        events.c.received_at,
        events.c.processed_at,
        events.c.normalized,
        events.c.error,
    ]
    rows, cursor = _keyset(
        store, columns, events.c.received_at, events.c.id, conds, f.limit, f.cursor, keep
    )
    return Page([_summary(r) for r in rows], cursor)


def list_deliveries(store: Store, f: DeliveryFilter) -> Page[DeliveryView]:
    """Deliveries newest first; `status="dead"` is the dead-letter queue."""
    conds: list[Any] = []
    for column, value in (
        (deliveries.c.status, f.status),
        (deliveries.c.connector, f.connector),
        (deliveries.c.destination, f.destination),
        (deliveries.c.rule_id, f.rule),
        (deliveries.c.inbound_id, f.event),
    ):
        if value:
            conds.append(column == value)
    if f.since is not None:
        conds.append(deliveries.c.updated_at >= f.since)
    rows, cursor = _keyset(
        store, [deliveries], deliveries.c.created_at, deliveries.c.id, conds, f.limit, f.cursor
    )
    return Page([delivery_view(r) for r in rows], cursor)


def get_delivery_view(store: Store, delivery_id: str) -> DeliveryView | None:
    with store.guard("read a delivery"), store.engine.connect() as conn:
        row = conn.execute(select(deliveries).where(deliveries.c.id == delivery_id)).first()
    return delivery_view(row) if row is not None else None


def deliveries_of_event(store: Store, inbound_id: str) -> list[DeliveryView]:
    query = (
        select(deliveries)
        .where(deliveries.c.inbound_id == inbound_id)
        .order_by(deliveries.c.seq, deliveries.c.rule_id, deliveries.c.action_index)
    )
    with store.guard("list an event's deliveries"), store.engine.connect() as conn:
        return [delivery_view(r) for r in conn.execute(query)]


def matched_rules(store: Store, inbound_id: str, event_ids: Sequence[str]) -> list[str]:
    """Rules that matched an inbound event: those that planned deliveries, were counted by a
    throttle/dedupe window, or collected it into a group."""
    parts = [select(deliveries.c.rule_id).where(deliveries.c.inbound_id == inbound_id)]
    if event_ids:
        parts += [
            select(rule_firings.c.rule_id).where(rule_firings.c.event_id.in_(event_ids)),
            select(group_events.c.rule_id).where(group_events.c.event_id.in_(event_ids)),
        ]
    with store.guard("list matched rules"), store.engine.connect() as conn:
        return sorted(set(conn.scalars(union(*parts))))


def delivery_view(row: Any) -> DeliveryView:
    return DeliveryView(
        id=row.id,
        inbound_id=row.inbound_id,
        event_id=row.event_id,
        rule_id=row.rule_id,
        action_index=row.action_index,
        connector=row.connector,
        operation=row.operation,
        destination=row.destination,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        ref=row.ref,
        created_at=row.created_at,
        updated_at=row.updated_at,
        params=dict(row.params or {}),
    )


def _keyset(
    store: Store,
    columns: list[Any],
    at: Any,
    key: Any,
    conds: list[Any],
    limit: int,
    cursor: str | None,
    keep: Callable[[Any], bool] | None = None,
) -> tuple[list[Any], str | None]:
    """One page, newest first, after `cursor`; `keep` filters in Python (scan is bounded)."""
    limit = max(1, min(limit, MAX_LIMIT))
    position = decode_cursor(cursor) if cursor else None
    out: list[Any] = []
    scanned = 0
    with store.guard("list rows"), store.engine.connect() as conn:
        while True:
            where = list(conds)
            if position is not None:
                where.append(or_(at < position[0], and_(at == position[0], key < position[1])))
            batch_size = limit + 1 if keep is None else max(limit * 4, 100)
            query = select(*columns).where(*where).order_by(at.desc(), key.desc())
            batch = conn.execute(query.limit(batch_size)).all()
            for row in batch:
                scanned += 1
                position = (float(row._mapping[at.name]), str(row._mapping[key.name]))
                if keep is None or keep(row):
                    out.append(row)
                if len(out) > limit:
                    last = out[limit - 1]._mapping
                    return out[:limit], encode_cursor(last[at.name], last[key.name])
                if scanned >= _SCAN_LIMIT:
                    return out, encode_cursor(*position)
            if len(batch) < batch_size:
                return out, None


def _types(normalized: Any) -> list[str]:
    return [str(e.get("type")) for e in normalized or [] if isinstance(e, dict)]


def _summary(row: Any) -> InboundSummary:
    titles = []
    for item in row.normalized or []:
        entity = (item.get("data") or {}).get("entity") or {} if isinstance(item, dict) else {}
        if entity.get("title"):
            titles.append(str(entity["title"]))
    return InboundSummary(
        id=row.id,
        source=row.source,
        provider_delivery_id=row.provider_delivery_id,
        status=row.status,
        received_at=row.received_at,
        processed_at=row.processed_at,
        types=_types(row.normalized),
        titles=titles,
        error=row.error,
    )


def glob_prefix(pattern: str) -> str:
    """The literal start of a glob, usable in a LIKE before the glob is checked."""
    cut = min((pattern.index(c) for c in _GLOB if c in pattern), default=len(pattern))
    return pattern[:cut]


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _body_text(store: Store) -> Any:
    """The raw body as text for LIKE; PostgreSQL's escape encoding never fails on bad UTF-8."""
    if store.engine.dialect.name == "postgresql":
        return func.encode(event_bodies.c.body, "escape")
    return cast(event_bodies.c.body, Text)


def event_processed_at(store: Store, event_id: str) -> float | None:
    with store.guard("read an event"), store.engine.connect() as conn:
        value = conn.scalar(select(events.c.processed_at).where(events.c.id == event_id))
    return float(value) if value is not None else None
