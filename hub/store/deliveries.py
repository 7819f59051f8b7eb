"""Deliveries and their attempts: planned sends, claimed by a worker, finished per attempt.

Claiming a row is a conditional UPDATE, so a redelivered broker message for a row that
another worker holds, or that is already done, changes nothing and is dropped.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select

from hub.store import statements as sql
from hub.store.engine import guard, insert_ignore_factory
from hub.store.tables import attempts, deliveries

TERMINAL_DELIVERY = ("delivered", "dead", "skipped")

#: How soon a delivery waiting behind another delivery looks again; the one it waits for
#: also wakes it when it finishes, so this is only the fallback.
BLOCKED_RECHECK_S = 2.0
#: How soon a delivery waiting for an earlier event's processing looks again. Processing
#: takes 6-8 ms at the median and 25-30 ms at p99 at 500 events/s; 100 ms made this wait
#: the end-to-end p99 (load.py: processed -> batch p99 122-124 ms, 85-88 ms at 20 ms;
#: 10 ms was no better).
ORDERING_RECHECK_S = 0.02
#: A claim that lost a race with something that has since cleared tries again this soon.
READY_RECHECK_S = 0.05


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannedAction:
    """Which action a delivery carries out: the rule's action at `action_index`, for one
    normalized event (`event_id`) of one inbound (`inbound_id`), through `connector`."""

    id: str
    inbound_id: str
    event_id: str
    rule_id: str
    action_index: int
    connector: str
    operation: str | None
    destination: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class NewDelivery(PlannedAction):
    params: dict[str, Any]
    idempotency_key: str
    entity_key: str | None = None
    seq: float = 0.0
    status: str = "pending"
    last_error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryRow(PlannedAction):
    params: dict[str, Any]
    idempotency_key: str
    status: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    ref: str | None
    entity_key: str | None
    seq: float
    created_at: float
    #: Attempts made before the latest replay, and when it happened (None: never replayed).
    retry_base_attempts: int = 0
    retry_since: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptRecord:
    number: int
    started_at: float
    duration_ms: float
    outcome: str
    status_code: int | None
    detail: str | None


class DeliveryStore:
    """The `deliveries` and `attempts` tables; `Store` delegates to one of these."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Built once: see hub.store.statements for why.
        self._insert = insert_ignore_factory(engine)(deliveries)

    def insert(
        self, conn: Connection, inbound_id: str, planned: list[NewDelivery], now: float
    ) -> list[str]:
        """Insert `planned` in the caller's transaction; the inbound's pending ids."""
        if planned:
            conn.execute(self._insert, [delivery_values(d, now=now) for d in planned])
        return list(conn.scalars(sql.PENDING_OF_INBOUND, {"b_inbound": inbound_id}))

    def add(self, inbound_id: str, planned: list[NewDelivery], *, now: float) -> list[str]:
        with guard("record deliveries"), self.engine.begin() as conn:
            return self.insert(conn, inbound_id, planned, now)

    def get(self, delivery_id: str) -> DeliveryRow | None:
        with guard("read a delivery"), self.engine.connect() as conn:
            row = (
                conn.execute(select(deliveries).where(deliveries.c.id == delivery_id))
                .mappings()
                .first()
            )
        return row_to_delivery(row) if row else None

    def list_rows(self, *, inbound_id: str | None = None) -> list[DeliveryRow]:
        query = select(deliveries).order_by(deliveries.c.created_at, deliveries.c.action_index)
        if inbound_id is not None:
            query = query.where(deliveries.c.inbound_id == inbound_id)
        with guard("list deliveries"), self.engine.connect() as conn:
            return [row_to_delivery(r) for r in conn.execute(query).mappings()]

    def open_connectors(self) -> set[str]:
        query = (
            select(deliveries.c.connector)
            .where(deliveries.c.status.in_(("pending", "sending")))
            .distinct()
        )
        with guard("list connectors with open deliveries"), self.engine.connect() as conn:
            return set(conn.scalars(query))

    def finish_attempt(
        self,
        delivery_id: str,
        attempt: AttemptRecord,
        *,
        status: str,
        now: float,
        next_attempt_at: float | None,
        ref: str | None,
        last_error: str | None,
        params: dict[str, Any] | None,
    ) -> None:
        with guard("record a delivery attempt"), self.engine.begin() as conn:
            conn.execute(
                sql.RECORD_ATTEMPT,
                {
                    "b_delivery": delivery_id,
                    "b_number": attempt.number,
                    "b_started": attempt.started_at,
                    "b_duration": attempt.duration_ms,
                    "b_outcome": attempt.outcome,
                    "b_status_code": attempt.status_code,
                    "b_detail": attempt.detail,
                },
            )
            conn.execute(
                sql.FINISH_ATTEMPT,
                {
                    "b_id": delivery_id,
                    "b_status": status,
                    "b_now": now,
                    "b_error": last_error,
                    "b_next": next_attempt_at,
                    "b_ref": ref,
                },
            )
            if params is not None:
                conn.execute(
                    sql.SET_PARAMS, {"b_id": delivery_id, "b_params": params, "b_now": now}
                )

    def list_attempts(self, delivery_id: str) -> list[AttemptRecord]:
        query = (
            select(attempts)
            .where(attempts.c.delivery_id == delivery_id)
            .order_by(attempts.c.number)
        )
        with guard("list attempts"), self.engine.connect() as conn:
            return [
                AttemptRecord(
                    number=r["number"],
                    started_at=r["started_at"],
                    duration_ms=r["duration_ms"],
                    outcome=r["outcome"],
                    status_code=r["status_code"],
                    detail=r["detail"],
                )
                for r in conn.execute(query).mappings()
            ]


def new_delivery_id() -> str:
    return uuid.uuid4().hex


def delivery_values(d: NewDelivery, *, now: float) -> dict[str, Any]:
    """The row a planned delivery inserts."""
    return {
        "id": d.id,
        "inbound_id": d.inbound_id,
        "event_id": d.event_id,
        "rule_id": d.rule_id,
        "action_index": d.action_index,
        "connector": d.connector,
        "operation": d.operation,
        "destination": d.destination,
        "params": d.params,
        "idempotency_key": d.idempotency_key,
        "entity_key": d.entity_key,
        "seq": d.seq,
        "status": d.status,
        "attempts": 0,
        "next_attempt_at": now,
        "last_error": d.last_error,
        "created_at": now,
        "updated_at": now,
    }


#: The columns `delivery_values` fills; the others take their defaults.
DELIVERY_VALUE_COLUMNS = (
    "id",
    "inbound_id",
    "event_id",
    "rule_id",
    "action_index",
    "connector",
    "operation",
    "destination",
    "params",
    "idempotency_key",
    "entity_key",
    "seq",
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
    "created_at",
    "updated_at",
)


def row_to_delivery(row: Any) -> DeliveryRow:
    return DeliveryRow(
        id=row["id"],
        inbound_id=row["inbound_id"],
        event_id=row["event_id"],
        rule_id=row["rule_id"],
        action_index=row["action_index"],
        connector=row["connector"],
        operation=row["operation"],
        destination=row["destination"],
        params=dict(row["params"]),
        idempotency_key=row["idempotency_key"],
        status=row["status"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        ref=row["ref"],
        entity_key=row["entity_key"],
        seq=row["seq"],
        created_at=row["created_at"],
        retry_base_attempts=row["retry_base_attempts"] or 0,
        retry_since=row["retry_since"],
    )
