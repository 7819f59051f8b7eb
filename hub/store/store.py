"""Store operations: every read and write of events, deliveries and attempts.

Calls are synchronous and thread-safe; async code runs them with `asyncio.to_thread`.
Claiming a row is a conditional UPDATE, so a redelivered broker message for a row
that another worker holds, or that is already done, changes nothing and is dropped.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from hub.errors import StoreError
from hub.store import statements as sql
from hub.store.crypto import PLAIN, TokenCipher
from hub.store.tables import attempts, deliveries, event_bodies, events

TERMINAL_DELIVERY = ("delivered", "dead", "skipped")


@dataclass(frozen=True, slots=True, kw_only=True)
class NewEvent:
    id: str
    source: str
    delivery_id: str
    received_at: float
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class InsertOutcome:
    id: str
    duplicate: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRow:
    id: str
    source: str
    delivery_id: str
    status: str
    received_at: float
    headers: dict[str, str]
    body: bytes
    normalized: list[dict[str, Any]] | None
    error: str | None
    attempts: int


@dataclass(frozen=True, slots=True, kw_only=True)
class NewDelivery:
    id: str
    inbound_id: str
    event_id: str
    rule_id: str
    action_index: int
    connector: str
    operation: str | None
    destination: str | None
    params: dict[str, Any]
    idempotency_key: str
    entity_key: str | None = None
    seq: float = 0.0
    status: str = "pending"
    last_error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryRow:
    id: str
    inbound_id: str
    event_id: str
    rule_id: str
    action_index: int
    connector: str
    operation: str | None
    destination: str | None
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


class Store:
    """All persistence; one instance per process, shared by threads."""

    #: Seals token fields of stored documents (hub/store/crypto.py); build_runtime sets it.
    cipher: TokenCipher = PLAIN

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = _insert_ignore_factory(engine)
        # Built once: see hub.store.statements for why.
        self._insert_events = self._insert(events).returning(
            events.c.id, sort_by_parameter_order=True
        )
        self._insert_deliveries_stmt = self._insert(deliveries)
        self._insert_bodies = insert(event_bodies)

    def create_schema(self) -> None:
        """Migrate the store to the newest schema (Alembic); concurrent starters take turns."""
        # Alembic logs its plugin set-up at INFO when first imported; migrate logs what ran.
        logging.getLogger("alembic").setLevel(logging.WARNING)
        # Imported here: migrate takes SCHEMA_LOCK_KEY from this module.
        from hub.store import migrate

        migrate.upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # --- events -------------------------------------------------------------------

    def insert_events(self, batch: Sequence[NewEvent]) -> list[InsertOutcome]:
        """Insert a batch in one transaction; rows whose id exists are duplicates.

        The database says which rows it inserted (`ON CONFLICT DO NOTHING RETURNING id`):
        a row another ingress process commits at the same moment is a duplicate here,
        never a second "new" event. Only the inserted rows get their body written, in the
        same transaction (`event_bodies`).
        """
        if not batch:
            return []
        firsts: dict[str, NewEvent] = {}
        for e in batch:
            firsts.setdefault(e.id, e)
        values = [event_values(e) for e in firsts.values()]

        def write(conn: Connection) -> set[str]:
            inserted = set(conn.scalars(self._insert_events, values))
            if inserted:
                conn.execute(
                    self._insert_bodies,
                    [body_values(e) for e in firsts.values() if e.id in inserted],
                )
            return inserted

        with self.guard("store accepted events"):
            inserted = self.write_eagerly(write)
        out: list[InsertOutcome] = []
        for e in batch:
            out.append(InsertOutcome(e.id, duplicate=e.id not in inserted))
            inserted.discard(e.id)  # a second copy in the same batch is a duplicate
        return out

    def write_eagerly(self, write: Callable[[Connection], T]) -> T:
        """Run `write` in a transaction, polling SQLite's write lock every LOCK_POLL_S.

        SQLite's own busy handler naps 1, 2, 5 … up to 100 ms between tries, and under
        load the workers' short transactions took the lock while ingress napped: webhook
        acks waited up to 0.6 s. Ingress answers a provider that is waiting, so it asks
        often. Other databases lock rows, not the file: one plain transaction there.
        """
        if self.engine.dialect.name != "sqlite":
            with self.engine.begin() as conn:
                return write(conn)
        deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA busy_timeout=0")
            conn.commit()
            try:
                while True:
                    try:
                        with conn.begin():
                            return write(conn)
                    except OperationalError as exc:
                        if "locked" not in str(exc) or time.monotonic() > deadline:
                            raise
                    time.sleep(LOCK_POLL_S)  # noqa: TID251 - a lock poll, not logic time
            finally:
                conn.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
                conn.commit()

    @contextlib.contextmanager
    def keyed_write(self, key: str) -> Iterator[Connection]:
        """A transaction that reads, then writes, holding a lock on `key` from the start.

        "Open a group unless one is open" and "fire unless the window is full" race
        otherwise: on PostgreSQL two transactions both read nothing and both write; on
        SQLite the second one's read snapshot cannot become a write once the first has
        committed, and it fails. PostgreSQL: an advisory lock on the key's hash, held to
        the end of the transaction; SQLite: BEGIN IMMEDIATE takes its one write lock
        before the first read. Callers wrap it in `guard`.
        """
        with self.engine.connect() as conn:
            if self.engine.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
                conn.execute(
                    select(func.pg_advisory_xact_lock(int.from_bytes(digest, "big", signed=True)))
                )
            yield conn
            conn.commit()

    def get_event(self, event_id: str) -> EventRow | None:
        with self.guard("read an event"), self.engine.connect() as conn:
            row = conn.execute(_EVENT_WITH_BODY, {"b_id": event_id}).mappings().first()
        if row is None:
            return None
        return row_to_event(row, row if row["body"] is not None else None)

    def claim_event(self, event_id: str, *, now: float, lease_s: float) -> EventRow | None:
        """Take an event for processing; None if it is done or leased by someone else."""
        with self.guard("claim an event"), self.engine.begin() as conn:
            row = (
                conn.execute(
                    sql.CLAIM_EVENT, {"b_id": event_id, "b_now": now, "b_until": now + lease_s}
                )
                .mappings()
                .first()
            )
            if row is None:
                return None
            payload = event_payloads(conn, [event_id])
        return row_to_event(row, payload.get(event_id))

    def finish_event(
        self,
        event_id: str,
        *,
        now: float,
        normalized: list[dict[str, Any]] | None,
        new_deliveries: Iterable[NewDelivery],
        error: str | None = None,
    ) -> list[str]:
        """Record the outcome and the deliveries in one transaction; return pending ids."""
        with self.guard("record a processed event"), self.engine.begin() as conn:
            pending = self._insert_deliveries(conn, event_id, list(new_deliveries), now)
            conn.execute(
                sql.FINISH_EVENT,
                {
                    "b_id": event_id,
                    "b_status": "failed" if error else "processed",
                    "b_normalized": normalized,
                    "b_error": error,
                    "b_now": now,
                },
            )
        return pending

    def add_deliveries(
        self, inbound_id: str, planned: Iterable[NewDelivery], *, now: float
    ) -> list[str]:
        """Insert deliveries not tied to one inbound webhook (group digests); pending ids."""
        with self.guard("record deliveries"), self.engine.begin() as conn:
            return self._insert_deliveries(conn, inbound_id, list(planned), now)

    def _insert_deliveries(
        self, conn: Any, inbound_id: str, planned: list[NewDelivery], now: float
    ) -> list[str]:
        if planned:
            conn.execute(
                self._insert_deliveries_stmt,
                [delivery_values(d, now=now) for d in planned],
            )
        return list(conn.scalars(sql.PENDING_OF_INBOUND, {"b_inbound": inbound_id}))

    # --- deliveries ---------------------------------------------------------------

    def get_delivery(self, delivery_id: str) -> DeliveryRow | None:
        with self.guard("read a delivery"), self.engine.connect() as conn:
            row = (
                conn.execute(select(deliveries).where(deliveries.c.id == delivery_id))
                .mappings()
                .first()
            )
        return row_to_delivery(row) if row else None

    def list_deliveries(self, *, inbound_id: str | None = None) -> list[DeliveryRow]:
        query = select(deliveries).order_by(deliveries.c.created_at, deliveries.c.action_index)
        if inbound_id is not None:
            query = query.where(deliveries.c.inbound_id == inbound_id)
        with self.guard("list deliveries"), self.engine.connect() as conn:
            return [row_to_delivery(r) for r in conn.execute(query).mappings()]

    def claim_delivery(self, delivery_id: str, *, now: float, lease_s: float) -> DeliveryRow | None:
        """Take a due delivery for sending; None if done, not due, leased elsewhere, or
        waiting behind an earlier delivery for the same entity and destination (or behind
        an earlier event not yet processed, which may turn out to be for the same entity)."""
        with self.guard("claim a delivery"), self.engine.begin() as conn:
            row = (
                conn.execute(
                    sql.CLAIM_DELIVERY,
                    {"b_id": delivery_id, "b_now": now, "b_until": now + lease_s},
                )
                .mappings()
                .first()
            )
        return row_to_delivery(row) if row is not None else None

    def entity_refs(
        self, *, connector: str, destination: str | None, entity_key: str
    ) -> dict[str, str]:
        """Latest ref per operation of delivered sends for one entity and destination."""
        query = sql.ENTITY_REFS[destination is not None]
        bound = {"b_connector": connector, "b_destination": destination, "b_entity": entity_key}
        with self.guard("read entity refs"), self.engine.connect() as conn:
            return {(op or ""): ref for op, ref in conn.execute(query, bound)}

    def open_delivery_connectors(self) -> set[str]:
        """Connectors with deliveries still to send (pending or being sent)."""
        query = (
            select(deliveries.c.connector)
            .where(deliveries.c.status.in_(("pending", "sending")))
            .distinct()
        )
        with self.guard("list connectors with open deliveries"), self.engine.connect() as conn:
            return set(conn.scalars(query))

    def claim_hint(self, delivery_id: str, *, now: float) -> tuple[str, float] | None:
        """Why a pending delivery could not be claimed, with seconds to come back in:
        ("early", until due), ("ordering", short) behind an event still being processed,
        ("blocked", fallback) behind an earlier delivery, ("ready", short) when nothing blocks
        it any more; None when it is not pending (done, or leased by another worker)."""
        with self.guard("read a delivery"), self.engine.connect() as conn:
            row = conn.execute(
                select(deliveries.c.status, deliveries.c.next_attempt_at).where(
                    deliveries.c.id == delivery_id
                )
            ).first()
            if row is None or row[0] != "pending":
                return None
            if row[1] > now:
                return "early", float(row[1] - now)
            this = deliveries.c.id == delivery_id
            if conn.scalar(
                select(func.count()).select_from(deliveries).where(this, sql.HAS_PREDECESSOR)
            ):
                return "blocked", BLOCKED_RECHECK_S
            if conn.scalar(
                select(func.count())
                .select_from(deliveries)
                .where(this, sql.EARLIER_EVENT_UNPROCESSED)
            ):
                return "ordering", ORDERING_RECHECK_S
        # What blocked the claim a moment ago has cleared: claim again rather than drop
        # the message and leave the row to the sweeper.
        return "ready", READY_RECHECK_S

    def next_in_line(self, row: DeliveryRow) -> str | None:
        """The earliest pending delivery for the same entity and destination, if any."""
        if row.entity_key is None:
            return None
        query = sql.NEXT_IN_LINE[row.destination is not None]
        bound = {
            "b_connector": row.connector,
            "b_destination": row.destination,
            "b_entity": row.entity_key,
        }
        with self.guard("find the next delivery"), self.engine.connect() as conn:
            found = conn.scalar(query, bound)
        return str(found) if found is not None else None

    def defer_delivery(self, delivery_id: str, *, until: float, now: float) -> None:
        """Hand back a claim without counting an attempt (rate limit, open breaker)."""
        with self.guard("defer a delivery"), self.engine.begin() as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_id, deliveries.c.status == "sending")
                .values(
                    status="pending",
                    next_attempt_at=until,
                    lease_until=None,
                    attempts=deliveries.c.attempts - 1,
                    updated_at=now,
                )
            )

    def finish_attempt(
        self,
        delivery_id: str,
        attempt: AttemptRecord,
        *,
        status: str,
        now: float,
        next_attempt_at: float | None = None,
        ref: str | None = None,
        last_error: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        """Record one attempt and move the delivery to its next state; `params`, when
        given, replace the stored ones in the same transaction."""
        with self.guard("record a delivery attempt"), self.engine.begin() as conn:
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
        with self.guard("list attempts"), self.engine.connect() as conn:
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

    # --- sweeping -----------------------------------------------------------------

    def stale_event_ids(self, *, now: float, older_than: float, limit: int = 500) -> list[str]:
        """Hand out events never picked up (or replayed), or whose processing lease ran out.

        A row is handed to one sweeper once per lease, so several workers' sweepers do not
        each re-enqueue it: the same statement that picks it marks it swept (see
        `_sweep`). The mark is `lease_until = now` on a `received` row, where claims never
        look, and the row is stale again only when `older_than` (now - lease) passes it.
        An expired claim is released back to `received` (nobody holds it any more), so
        the worker that gets the message claims it at once.
        """
        cond = or_(
            and_(
                events.c.status == "received",
                # lease_until on a received row: when it was last handed out (sweep or
                # replay); without one, when it arrived (ingress enqueued it then).
                func.coalesce(events.c.lease_until, events.c.received_at) < older_than,
            ),
            and_(events.c.status == "processing", events.c.lease_until < now),
        )
        with self.guard("sweep stale events"), self.engine.begin() as conn:
            rows = _sweep(
                conn,
                events,
                cond,
                limit=limit,
                values={"status": "received", "lease_until": now},
                returning=(events.c.id,),
            )
        return [r[0] for r in rows]

    def stale_deliveries(
        self, *, now: float, older_than: float, limit: int = 500
    ) -> list[tuple[str, str]]:
        """Hand out (id, connector) of due deliveries no queue seems to hold, or expired leases.

        Marked swept like events (`stale_event_ids`): `lease_until = now` on a `pending`
        row, which its claim ignores (it only needs next_attempt_at <= now), and an
        expired `sending` claim goes back to `pending` keeping its attempt count (the lost
        attempt may have reached the destination). next_attempt_at is left alone, so a
        swept row is exactly as due as before.
        """
        # A pending row behind an earlier one for its entity is woken when that one
        # finishes (and that one is swept itself if its message was lost): skip it here.
        cond = or_(
            and_(
                deliveries.c.status == "pending",
                deliveries.c.next_attempt_at < older_than,
                or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until < older_than),
                ~sql.HAS_PREDECESSOR,
            ),
            and_(deliveries.c.status == "sending", deliveries.c.lease_until < now),
        )
        with self.guard("sweep stale deliveries"), self.engine.begin() as conn:
            rows = _sweep(
                conn,
                deliveries,
                cond,
                limit=limit,
                values={"status": "pending", "lease_until": now},
                returning=(deliveries.c.id, deliveries.c.connector),
            )
        return [(r[0], r[1]) for r in rows]

    def count_events(self, status: str | None = None) -> int:
        query = select(func.count()).select_from(events)
        if status is not None:
            query = query.where(events.c.status == status)
        with self.guard("count events"), self.engine.connect() as conn:
            return int(conn.scalar(query) or 0)

    def guard(self, doing: str) -> _Guard:
        """Context manager turning SQLAlchemy errors into StoreError("could not <doing>")."""
        return _Guard(doing)


class _Guard:
    """Translate SQLAlchemy errors into StoreError at this one edge."""

    def __init__(self, doing: str) -> None:
        self.doing = doing

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, SQLAlchemyError):
            first = exc.args[0] if exc.args else ""
            raise StoreError(f"could not {self.doing}: {type(exc).__name__}: {first}") from exc


def _sweep(
    conn: Any,
    table: Any,
    cond: Any,
    *,
    limit: int,
    values: dict[str, Any],
    returning: tuple[Any, ...],
) -> list[Any]:
    """Pick up to `limit` rows matching `cond` and mark them swept, in one statement.

    PostgreSQL: the pick is `FOR UPDATE SKIP LOCKED`, so a concurrent sweeper skips the
    rows this one holds, and a row it reaches after this one committed is re-checked
    against `cond` and no longer matches: each row goes to exactly one sweeper. A claim
    racing the sweep waits for it and then claims the marked row. SQLite has no row
    locks; the UPDATE takes its single write lock first, so sweepers simply queue.
    """
    picked = select(table.c.id).where(cond).limit(limit).correlate(None)
    if conn.dialect.name == "postgresql":
        picked = picked.with_for_update(skip_locked=True, of=table)
    sweep = update(table).where(table.c.id.in_(picked)).values(**values).returning(*returning)
    return list(conn.execute(sweep))


def open_store(url: str) -> Store:
    """Open (and create if needed) the store at a SQLAlchemy URL."""
    if url.startswith("sqlite:///") and not url.endswith(":memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except (SQLAlchemyError, ImportError) as exc:
        raise StoreError(f"cannot open store {url.split('@')[-1]!r}: {exc}") from exc
    store = Store(engine)
    for attempt in range(3):
        try:
            store.create_schema()
            break
        except StoreError as exc:
            # Processes starting together on a new SQLite file race CREATE TABLE; the
            # loser finds the table on its next look. Anything else is a real error.
            if "already exists" in str(exc) and attempt < 2:
                continue
            engine.dispose()
            raise
    return store


#: Advisory lock id for schema creation on PostgreSQL ("switchbd" in ASCII).
SCHEMA_LOCK_KEY = 0x73776974636862


#: How soon a delivery waiting behind another delivery looks again; the one it waits for
#: also wakes it when it finishes, so this is only the fallback.
BLOCKED_RECHECK_S = 2.0
#: How soon a delivery waiting for an earlier event's processing looks again.
ORDERING_RECHECK_S = 0.1
#: A claim that lost a race with something that has since cleared tries again this soon.
READY_RECHECK_S = 0.05


#: How long a write waits for SQLite's lock before it fails.
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: SQLite checkpoints its write-ahead log inside the commit that takes the log past this
#: many pages (4 KB each), and that commit's callers wait for the copy and its fsync: at
#: 1,000 webhooks/s (10-13 KB each) SQLite's default of 1,000 pages put ingress's ack p99
#: at 9-12 ms; 250 pages (smaller, more frequent copies) at 5-8 ms with the same req/s.
#: A checkpoint in a thread of its own did not help: under steady writes it never caught
#: up, so the log never restarted (800 MB in 20 s), and the ack p99 stayed at 10.7 ms
#: (docs/benchmarks.md, "Night of 2026-11-29").
WAL_AUTOCHECKPOINT_PAGES = 250
#: How often ingress tries SQLite's write lock while another process holds it.
LOCK_POLL_S = 0.0005
T = TypeVar("T")


def new_delivery_id() -> str:
    return uuid.uuid4().hex


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the writer; synchronous=NORMAL in WAL mode survives a
    # process crash (not a power cut) at a fraction of FULL's fsync cost.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
    cursor.close()


def _insert_ignore_factory(engine: Engine) -> Any:
    dialect = engine.dialect.name

    def build(table: Any) -> Any:
        if dialect == "sqlite":
            return sqlite.insert(table).on_conflict_do_nothing()
        if dialect == "postgresql":
            return postgresql.insert(table).on_conflict_do_nothing()
        raise StoreError(f"unsupported database {dialect!r}; use SQLite or PostgreSQL")

    return build


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


def event_values(e: NewEvent) -> dict[str, Any]:
    """The `events` row of a newly received event (its body goes to `body_values`)."""
    return {
        "id": e.id,
        "source": e.source,
        "delivery_id": e.delivery_id,
        "status": "received",
        "received_at": e.received_at,
        "attempts": 0,
    }


def body_values(e: NewEvent) -> dict[str, Any]:
    """The `event_bodies` row of a newly received event: the request as it came."""
    return {"event_id": e.id, "headers": e.headers, "body": e.body}


_PAYLOADS = select(event_bodies).where(
    event_bodies.c.event_id.in_(bindparam("b_ids", expanding=True))
)
_EVENT_WITH_BODY = (
    select(events, event_bodies.c.headers, event_bodies.c.body)
    .select_from(events.outerjoin(event_bodies, event_bodies.c.event_id == events.c.id))
    .where(events.c.id == bindparam("b_id"))
)


def event_payloads(conn: Connection, ids: Sequence[str]) -> dict[str, Any]:
    """The stored headers and body of each of `ids`, in one SELECT; pruned ones are absent."""
    if not ids:
        return {}
    return {r["event_id"]: r for r in conn.execute(_PAYLOADS, {"b_ids": list(ids)}).mappings()}


def row_to_event(row: Any, payload: Any | None) -> EventRow:
    """An `events` row with its `event_bodies` row; None for a pruned payload (empty)."""
    return EventRow(
        id=row["id"],
        source=row["source"],
        delivery_id=row["delivery_id"],
        status=row["status"],
        received_at=row["received_at"],
        headers=dict(payload["headers"]) if payload is not None else {},
        body=bytes(payload["body"]) if payload is not None else b"",
        normalized=row["normalized"],
        error=row["error"],
        attempts=row["attempts"],
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
