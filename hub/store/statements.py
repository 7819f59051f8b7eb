"""The hot path's statements, built once with bind parameters.

Every event costs a finish and an attempt record (the claims are in batches.py). Building
those statements per call (and the correlated EXISTS of the order checks with a fresh
alias each time) cost more CPU than running them: SQLAlchemy memoizes a statement
object's cache key, so a statement built once compiles once and then only binds values.
Bind parameter names start with `b_`: names equal to a column's are reserved in SET.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Float,
    and_,
    bindparam,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from hub.store.tables import attempts, deliveries, events


class unindexed(FunctionElement[str]):
    """A column SQLite's planner must not look up by index: `+column` there, as is.

    SQLite plans without statistics (the hub never runs ANALYZE), and for
    `entity_key IN (...) AND (status = 'delivered' AND ... OR status = 'pending')` it
    chose the status index: every delivered row was read, 2.5 ms per call with 10,000
    in the store and growing with it, twice per delivery batch. With the status term
    unindexed it takes the entity index: 7-11 µs. PostgreSQL plans from statistics.
    """

    inherit_cache = True

    def __init__(self, column: ColumnElement[str]) -> None:
        super().__init__(column)
        self.type = column.type  # compared as the column is (no cast on PostgreSQL)


@compiles(unindexed)
def _unindexed(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(unindexed, "sqlite")
def _unindexed_sqlite(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + str(compiler.process(element.clauses, **kw))


def has_predecessor() -> Any:
    """An earlier undelivered delivery for the same entity, connector and destination."""
    earlier = deliveries.alias("earlier")
    return exists().where(
        deliveries.c.entity_key.is_not(None),
        earlier.c.entity_key == deliveries.c.entity_key,
        earlier.c.connector == deliveries.c.connector,
        or_(
            earlier.c.destination == deliveries.c.destination,
            and_(earlier.c.destination.is_(None), deliveries.c.destination.is_(None)),
        ),
        earlier.c.status.in_(("pending", "sending")),
        or_(
            earlier.c.seq < deliveries.c.seq,
            and_(earlier.c.seq == deliveries.c.seq, earlier.c.id < deliveries.c.id),
        ),
    )


def earlier_event_unprocessed() -> Any:
    """An event received before this delivery's event that is not processed yet.

    Its entity is unknown until it is normalized, so it may be the same entity: an
    entity's deliveries go out in the order their events arrived, not the order workers
    happened to process them in. Processing takes milliseconds, so the wait is short.
    """
    return exists().where(
        deliveries.c.entity_key.is_not(None),
        events.c.status.in_(("received", "processing")),
        events.c.received_at < deliveries.c.seq,
    )


HAS_PREDECESSOR = has_predecessor()
EARLIER_EVENT_UNPROCESSED = earlier_event_unprocessed()

FINISH_EVENT = (
    update(events)
    .where(events.c.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        normalized=bindparam("b_normalized", type_=JSON(none_as_null=True)),
        error=bindparam("b_error"),
        lease_until=None,
        processed_at=bindparam("b_now"),
    )
)

PENDING_OF_INBOUND = select(deliveries.c.id).where(
    deliveries.c.inbound_id == bindparam("b_inbound"), deliveries.c.status == "pending"
)

RECORD_ATTEMPT = attempts.insert().values(
    delivery_id=bindparam("b_delivery"),
    number=bindparam("b_number"),
    started_at=bindparam("b_started"),
    duration_ms=bindparam("b_duration"),
    outcome=bindparam("b_outcome"),
    status_code=bindparam("b_status_code"),
    detail=bindparam("b_detail"),
)

#: After an attempt; a NULL next attempt time or ref keeps the stored one.
FINISH_ATTEMPT = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        lease_until=None,
        updated_at=bindparam("b_now"),
        last_error=bindparam("b_error"),
        next_attempt_at=func.coalesce(
            bindparam("b_next", type_=Float), deliveries.c.next_attempt_at
        ),
        ref=func.coalesce(bindparam("b_ref", type_=deliveries.c.ref.type), deliveries.c.ref),
    )
)


#: New params for a delivery: re-rendered for a replay, or a delivered chat reply's with
#: their follow-up credentials masked (delivery.py).
SET_PARAMS = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("b_id"))
    .values(params=bindparam("b_params"), updated_at=bindparam("b_now"))
)
