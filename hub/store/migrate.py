"""Schema migrations: bring the store to a revision with Alembic, on start-up or on demand.

Every process upgrades the store when it opens it (`Store.create_schema`), and
`switchboard db upgrade` does it by hand. Processes starting together take turns: on
PostgreSQL under an advisory lock, on SQLite under the database's write lock (BEGIN
IMMEDIATE). Either is held for the whole upgrade, which is one transaction, so a revision
that fails leaves the store as it was and the next process to start tries again.

A store made before migrations existed (tables, no alembic_version) is adopted by the
first revision, whose CREATEs say IF NOT EXISTS: its rows are kept, the tables and indexes
it lacks are added, and it is stamped 0001 before any later revision runs.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from hub.errors import StoreError
from hub.store.engine import SCHEMA_LOCK_KEY

#: Alembic's `script_location`: the package holding env.py and versions/, found from this
#: file so that an installed wheel migrates too.
SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"

log = logging.getLogger("switchboard.store")
# Alembic says "Context impl SQLiteImpl." at INFO on every look; our own lines say what ran.
logging.getLogger("alembic").setLevel(logging.WARNING)

#: The revision a store made before migrations is adopted at.
INITIAL_REVISION = "0001"
#: Where Alembic records the store's revision.
VERSION_TABLE = "alembic_version"

#: Alembic keeps the running migration in module globals (`alembic.context`, `alembic.op`):
#: two threads of one process must not run revisions at the same moment, whatever the store.
_ALEMBIC_GLOBALS = threading.Lock()


def head() -> str:
    """The newest revision this code knows: what `upgrade` brings a store to."""
    with _errors("find the newest schema revision"):  # e.g. two revisions claim one parent
        found = _scripts().get_current_head()
    if found is None:  # pragma: no cover - the package always ships 0001
        raise StoreError(f"no schema revisions found in {SCRIPT_LOCATION}")
    return found


def current(engine: Engine) -> str | None:
    """The store's revision; None for an empty store or one made before migrations."""
    with _errors("read the schema revision"), engine.connect() as conn:
        return _current(conn)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the store to `revision` (default: the newest); a no-op when it is there."""
    target = head() if revision == "head" else revision
    if current(engine) == target:
        return  # the usual start: nothing to take turns for, nothing written
    with _errors(f"upgrade the schema to {revision}"), engine.connect() as conn:
        _take_turn(conn)
        # Read again under the lock: a process that held it before us may have done it all.
        before = _current(conn)
        # `events` has been in every store since the first release: tables but no version.
        if before is None and "events" in inspect(conn).get_table_names():
            log.info("adopting a store made before migrations at revision %s", INITIAL_REVISION)
        with _ALEMBIC_GLOBALS:
            command.upgrade(_config(conn), revision)
        after = _current(conn)
        conn.commit()
    if after != before:
        log.info("store schema upgraded from %s to %s", before or "nothing", after)


def connect(url: str, *, create: bool = True) -> Engine:
    """An engine on the store at `url` that, unlike `open_store`, migrates nothing itself.

    For `switchboard db`: with create=False a SQLite file that does not exist is an error
    rather than a new empty store.
    """
    where = url.split("@")[-1]
    if url.startswith("sqlite:///") and not url.endswith(":memory:"):
        path = Path(url.removeprefix("sqlite:///"))
        if not create and not path.exists():
            raise StoreError(f"no store at {path}: nothing has opened it yet")
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if url.startswith("sqlite"):
            return create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        return create_engine(url, pool_pre_ping=True)
    except (SQLAlchemyError, ImportError) as exc:
        raise StoreError(f"cannot open store {where!r}: {exc}") from exc


def _take_turn(conn: Connection) -> None:
    """Hold the store's schema lock until this connection's transaction ends."""
    if conn.dialect.name == "postgresql":
        # Transaction-scoped: released by the commit (or rollback) that ends the upgrade.
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
    elif conn.dialect.name == "sqlite":
        # pysqlite would run DDL outside any transaction: begin one ourselves, taking the
        # write lock now (waiting out the busy timeout), so CREATEs and the version row
        # commit together and a second starter sees all or nothing.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, in code: no alembic.ini needed where the hub is installed."""
    config = Config()
    # ConfigParser interpolates "%": a literal one in the install path must be doubled.
    config.set_main_option("script_location", str(SCRIPT_LOCATION).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def _scripts() -> ScriptDirectory:
    """The revision files; they do not change while the process runs."""
    return ScriptDirectory.from_config(_config())


@contextmanager
def _errors(doing: str) -> Iterator[None]:
    """Database and Alembic errors become StoreError("could not <doing>: ...")."""
    try:
        yield
    except (SQLAlchemyError, CommandError) as exc:
        first = exc.args[0] if exc.args else ""
        raise StoreError(f"could not {doing}: {type(exc).__name__}: {first}") from exc
