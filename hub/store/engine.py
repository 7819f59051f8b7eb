"""The store's engine: opening it, SQLite's settings, its write lock, and the error edge.

Everything here is about the database rather than about any of the rows in it: the
aggregates (hub/store/events.py, hub/store/deliveries.py, ...) build on it, and
hub/store/migrate.py takes the schema lock's key from it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Select,
    Table,
    create_engine,
    delete,
    event,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from hub.errors import StoreError

#: Advisory lock id for schema creation on PostgreSQL ("switchbd" in ASCII).
SCHEMA_LOCK_KEY = 0x73776974636862

#: How long a write waits for SQLite's lock before it fails.
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: SQLite checkpoints its write-ahead log inside the commit that takes the log past this
#: many pages (4 KB each), and that commit's callers wait for the copy and its fsync: at
#: 1,000 webhooks/s (10-13 KB each) SQLite's default of 1,000 pages put ingress's ack p99
#: at 9-12 ms; 250 pages (smaller, more frequent copies) at 5-8 ms with the same req/s.
#: A checkpoint in a thread of its own did not help: under steady writes it never caught
#: up, so the log never restarted (800 MB in 20 s), and the ack p99 stayed at 10.7 ms
#: (docs/benchmarks.md, history and "Tried and not kept").
WAL_AUTOCHECKPOINT_PAGES = 250
#: How often ingress tries SQLite's write lock while another process holds it.
LOCK_POLL_S = 0.0005
T = TypeVar("T")


def dump_json(value: Any) -> str:
    """JSON columns' text: orjson, or the stdlib for what orjson refuses.

    The stdlib encoder was 3% of a worker's CPU (every closed event stores its normalized
    form). orjson refuses integers beyond 64 bits and strings holding a lone surrogate;
    those get the stdlib's text, which `load_json` reads back the same way.
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value)


def load_json(text: str | bytes) -> Any:
    """A JSON column's value: orjson, or the stdlib for what orjson refuses."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def open_engine(url: str) -> Engine:
    """An engine on the store at a SQLAlchemy URL (a SQLite file's folder is created)."""
    if url.startswith("sqlite:///") and not url.endswith(":memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        if url.startswith("sqlite"):
            engine = create_engine(
                url,
                connect_args={"check_same_thread": False, "timeout": 30},
                json_serializer=dump_json,
                json_deserializer=load_json,
            )
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(
                url, pool_pre_ping=True, json_serializer=dump_json, json_deserializer=load_json
            )
    except (SQLAlchemyError, ImportError) as exc:
        raise StoreError(f"cannot open store {url.split('@')[-1]!r}: {exc}") from exc
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the writer; synchronous=NORMAL in WAL mode survives a
    # process crash (not a power cut) at a fraction of FULL's fsync cost.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
    cursor.close()


class Guard:
    """Translate SQLAlchemy errors into StoreError at this one edge."""

    def __init__(self, doing: str) -> None:
        self.doing = doing

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, SQLAlchemyError):
            first = exc.args[0] if exc.args else ""
            raise StoreError(f"could not {self.doing}: {type(exc).__name__}: {first}") from exc


def guard(doing: str) -> Guard:
    """Context manager turning SQLAlchemy errors into StoreError("could not <doing>")."""
    return Guard(doing)


def write_lock_path(engine: Engine) -> Path | None:
    """The file the workers' writers of a SQLite store take turns on (None: not a file)."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(f"{database}-writers")


class WriteTurn:
    """The workers' writers of one SQLite file take turns on a lock file, across processes.

    SQLite has one write lock and no queue: a writer that finds it held naps in its busy
    handler (1, 2, 5, 10 ... ms between tries), so two workers' writers napped while the
    lock sat free. `flock` on a file beside the store queues them in the kernel instead:
    the next one starts as soon as the last lets go. At 500 events/s (load.py, three runs
    each) the time from an event's processing to its delivery batch fell at p90 from
    73-106 to 40-45 ms, end-to-end p99 from 170-178 to 146-162 ms.

    Ingress takes no turn: it polls SQLite's lock (`EagerWriter`) and so goes first when
    the lock frees, which keeps webhook acks short; queueing it behind the workers' turns
    doubled its ack p99. Reads take no turn either (in WAL mode they wait for no writer).
    Writers without a turn (ingress, the CLI, the admin API) meet SQLite's own lock, so
    the turn is about waiting, never about correctness. One instance per writing thread:
    flock locks belong to the open file, so two instances exclude each other even in
    one process.
    """

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._fd: int | None = None

    def __enter__(self) -> None:
        if self._path is None:
            return
        if self._fd is None:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)  # waits in the kernel, without the GIL

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


class EagerWriter:
    """Runs write transactions that must not wait behind other writers' naps.

    SQLite's own busy handler naps 1, 2, 5 … up to 100 ms between tries, and under load
    the workers' short transactions took the lock while ingress napped: webhook acks
    waited up to 0.6 s. Ingress answers a provider that is waiting, so it asks often:
    every LOCK_POLL_S. The writes run on one connection kept for them with SQLite's busy
    timeout at 0 (setting it per write and back cost two statements and commits, ~10% of
    ingress's writer), and this process's threads take turns on a lock here rather than
    by failing on SQLite's. Other databases lock rows, not the file: one plain
    transaction there.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._conn: Connection | None = None

    def __call__(self, write: Callable[[Connection], T]) -> T:
        if self._engine.dialect.name != "sqlite":
            with self._engine.begin() as conn:
                return write(conn)
        with self._lock:
            conn = self._connection()
            deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
            while True:
                try:
                    with conn.begin():
                        return write(conn)
                except OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                time.sleep(LOCK_POLL_S)  # noqa: TID251 - a lock poll, not logic time

    def _connection(self) -> Connection:
        if self._conn is None:
            conn = self._engine.connect()
            conn.exec_driver_sql("PRAGMA busy_timeout=0")
            conn.commit()
            self._conn = conn
        return self._conn

    def close(self) -> None:
        """Give the kept connection back (before the engine is disposed)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class KeptConnection:
    """Transactions on one connection kept for one thread (the worker's store writer).

    Taking a connection from the pool and giving it back per transaction (checkout, the
    reset on return, the pool's locks) was about a third of the writer thread's GIL
    samples at 100 events/s, when batches hold an event or two and each costs several
    transactions (docs/benchmarks.md). After an error the connection is given back and
    the next transaction takes a fresh one, so one the server dropped is not reused.
    Not thread-safe: its one thread calls `transact` and `close`.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._turn = WriteTurn(write_lock_path(engine))
        self._conn: Connection | None = None

    def transact(self, write: Callable[[Connection], T], doing: str) -> T:
        """Run `write` in a transaction, in this store's write turn (`WriteTurn`); errors
        become StoreError("could not <doing>")."""
        with self._turn:
            return self._run(write, doing)

    def read(self, read: Callable[[Connection], T], doing: str) -> T:
        """Run `read` in a transaction without taking a write turn: in WAL mode reads
        never wait for the writer, and holding the turn for them made every writer of
        the store wait (docs/benchmarks.md)."""
        return self._run(read, doing)

    def _run(self, work: Callable[[Connection], T], doing: str) -> T:
        try:
            with guard(doing):
                if self._conn is None:
                    self._conn = self._engine.connect()
                with self._conn.begin():
                    return work(self._conn)
        except BaseException:
            self._close_connection()
            raise

    def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(SQLAlchemyError):  # already broken: the pool drops it
                conn.close()

    def close(self) -> None:
        self._close_connection()
        self._turn.close()


@contextlib.contextmanager
def keyed_write(engine: Engine, key: str) -> Iterator[Connection]:
    """A transaction that reads, then writes, holding a lock on `key` from the start.

    "Open a group unless one is open" and "fire unless the window is full" race
    otherwise: on PostgreSQL two transactions both read nothing and both write; on
    SQLite the second one's read snapshot cannot become a write once the first has
    committed, and it fails. PostgreSQL: an advisory lock on the key's hash, held to
    the end of the transaction; SQLite: BEGIN IMMEDIATE takes its one write lock
    before the first read. Callers wrap it in `guard`.
    """
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
            conn.execute(
                select(func.pg_advisory_xact_lock(int.from_bytes(digest, "big", signed=True)))
            )
        yield conn
        conn.commit()


def delete_in_batches(
    engine: Engine,
    table: Table,
    key: Column[Any],
    ids: Select[Any],
    *,
    batch_size: int,
    doing: str,
) -> int:
    """Delete the rows of `table` whose `key` is among `ids` (a select of key values),
    `batch_size` at a time; each batch is its own short transaction, so pruning a large
    store never holds a long write lock over ingress. How many rows went."""
    removed = 0
    while True:
        with guard(doing), engine.begin() as conn:
            batch = list(conn.scalars(ids.limit(batch_size)))
            if batch:
                conn.execute(delete(table).where(key.in_(batch)))
        removed += len(batch)
        if len(batch) < batch_size:
            return removed


def insert_ignore_factory(engine: Engine) -> Any:
    """`build(table)`: an INSERT that skips rows whose key exists, in the engine's dialect."""
    dialect = engine.dialect.name

    def build(table: Any) -> Any:
        if dialect == "sqlite":
            return sqlite.insert(table).on_conflict_do_nothing()
        if dialect == "postgresql":
            return postgresql.insert(table).on_conflict_do_nothing()
        raise StoreError(f"unsupported database {dialect!r}; use SQLite or PostgreSQL")

    return build
