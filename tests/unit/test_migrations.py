"""Schema migrations (Alembic): what they build, old stores adopted, racing starters, the CLI.

The first test is the one that catches a revision drifting from hub/store/tables.py: a
change to tables.py without a matching revision (or the reverse) fails it on SQLite and
on PostgreSQL.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    JSON,
    Engine,
    Index,
    LargeBinary,
    UniqueConstraint,
    column,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy import table as table_clause

from hub.cli import main
from hub.errors import StoreError
from hub.events import event_id_for
from hub.store import Store, migrate, open_store
from hub.store.batches import claim_events
from hub.store.events import NewInbound
from hub.store.tables import event_bodies, events, metadata
from tests.postgres import (  # noqa: F401  (the postgres_url and store_url fixtures)
    postgres_database,
    store_on_each_backend,
)
from tests.support import write_config

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    """An engine that migrates nothing by itself (unlike open_store)."""
    eng = migrate.connect(store_url)
    yield eng
    eng.dispose()


def _schema(engine: Engine) -> dict[str, Any]:
    """What the database holds, as the inspector sees it (Alembic's own table aside)."""
    insp = inspect(engine)
    tables: dict[str, Any] = {}
    for name in sorted(set(insp.get_table_names()) - {migrate.VERSION_TABLE}):
        tables[name] = {
            "columns": [(c["name"], c["nullable"]) for c in insp.get_columns(name)],
            "primary_key": insp.get_pk_constraint(name)["constrained_columns"],
            "unique": sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(name)),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in insp.get_indexes(name)
                # PostgreSQL lists a unique constraint's own index as well.
                if "duplicates_constraint" not in i
            ),
        }
    return tables


def _expected() -> dict[str, Any]:
    """The same description, read from hub/store/tables.py."""
    tables: dict[str, Any] = {}
    for table in sorted(metadata.tables.values(), key=lambda t: t.name):
        tables[table.name] = {
            "columns": [(c.name, c.nullable) for c in table.columns],
            "primary_key": [c.name for c in table.primary_key.columns],
            "unique": sorted(
                tuple(c.name for c in u.columns)
                for u in table.constraints
                if isinstance(u, UniqueConstraint)
            ),
            "indexes": sorted(
                (str(i.name), tuple(c.name for c in i.columns), bool(i.unique))
                for i in table.indexes
                if isinstance(i, Index)
            ),
        }
    return tables


def _drift(engine: Engine) -> list[Any]:
    """Alembic's autogenerate diff against tables.py: types, nullability, indexes, keys."""
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))


def _version_rows(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.scalars(text("SELECT version_num FROM alembic_version")))


def _event_row(event_id: str, status: str = "processed") -> dict[str, Any]:
    """An `events` row as revision 0001 stored it: headers and body in the row, the
    provider's id in `delivery_id` (`provider_delivery_id` since 0009)."""
    return {
        "id": event_id,
        "source": "github",
        "delivery_id": event_id,
        "status": status,
        "received_at": 1.0,
        "headers": {"x-github-event": "issues"},
        "body": b'{"action": "opened"}',
        "attempts": 1,
    }


#: Columns renamed since, by their name in tables.py: what older revisions call them.
_RENAMED = {"provider_delivery_id": "delivery_id"}  # 0009
_NAMES_0008 = [(_RENAMED.get(c.name, c.name), c.type) for c in events.columns]

#: `events` as revision 0001 has it, for writing rows into a store at that revision.
EVENTS_0001 = table_clause(
    "events",
    *(column(name, type_) for name, type_ in _NAMES_0008),
    column("headers", JSON()),
    column("body", LargeBinary()),
)
#: `events` as revisions 0002 to 0008 have it (headers and body in `event_bodies`).
EVENTS_0008 = table_clause("events", *(column(name, type_) for name, type_ in _NAMES_0008))


def _store_at_0001(engine: Engine, *rows: dict[str, Any]) -> None:
    """A store the previous release wrote: migrated to 0001, with `rows` in `events`."""
    migrate.upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(insert(EVENTS_0001), list(rows))


def _insert_event(engine: Engine, event_id: str) -> None:
    """An event row and its body row, written straight into a store at head."""
    row = _event_row(event_id)
    row["provider_delivery_id"] = row.pop("delivery_id")
    payload = {"event_id": event_id, "headers": row.pop("headers"), "body": row.pop("body")}
    with engine.begin() as conn:
        conn.execute(insert(events).values(row))
        conn.execute(insert(event_bodies).values(payload))


# --- what a migration builds -----------------------------------------------------------------


def test_a_fresh_upgrade_builds_exactly_the_tables_columns_and_indexes_of_tables_py(
    engine: Engine,
) -> None:
    assert migrate.current(engine) is None
    migrate.upgrade(engine)
    assert migrate.current(engine) == migrate.head()
    assert _schema(engine) == _expected()
    assert _drift(engine) == []


def test_upgrading_a_store_at_head_again_changes_nothing(engine: Engine) -> None:
    store = Store(engine)
    store.create_schema()
    _insert_event(engine, "kept")
    before = _schema(engine)
    store.create_schema()
    migrate.upgrade(engine, migrate.head())
    assert _schema(engine) == before
    assert _version_rows(engine) == [migrate.head()]
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(events)) == 1


def test_revisions_form_one_chain_numbered_by_their_files() -> None:
    # One head, each revision after the one before it: a revision written on a branch of
    # its own (two engineers adding tables at once) fails here, not on a user's store.
    versions = Path(migrate.SCRIPT_LOCATION) / "versions"
    files = sorted(p.name for p in versions.glob("[0-9][0-9][0-9][0-9]_*.py"))
    revisions = [name[:4] for name in files]
    assert migrate.INITIAL_REVISION == revisions[0] == "0001"
    assert migrate.head() == revisions[-1]
    for earlier, later in itertools.pairwise(files):
        text = (versions / later).read_text(encoding="utf-8")
        assert f'down_revision: str | None = "{earlier[:4]}"' in text, (later, earlier)


# --- 0002: event bodies in a table of their own ----------------------------------------------


def test_upgrading_a_0001_store_keeps_every_body_and_header_and_its_events_still_process(
    engine: Engine,
) -> None:
    # given a store the previous release wrote: one event waiting, one processed, one pruned
    pruned = _event_row("pruned") | {"headers": {}, "body": b""}
    _store_at_0001(engine, _event_row("waiting", "received"), _event_row("done"), pruned)
    # when the new release opens it
    store = Store(engine)
    store.create_schema()
    # then the schema is tables.py's and the request of every event is where it was
    assert migrate.current(engine) == migrate.head()
    assert _schema(engine) == _expected()
    assert _drift(engine) == []
    for event_id in ("waiting", "done"):
        row = store.get_event(event_id)
        assert row is not None
        assert (row.headers, row.body) == ({"x-github-event": "issues"}, b'{"action": "opened"}')
    gone = store.get_event("pruned")
    assert gone is not None
    assert (gone.headers, gone.body) == ({}, b"")
    # and the waiting event is claimed with its body, by the batch claim as by the single one
    with engine.begin() as conn:
        [claimed] = claim_events(conn, ["waiting", "done"], now=10.0, lease_s=60)
    assert (claimed.id, claimed.status) == ("waiting", "processing")
    assert claimed.body == b'{"action": "opened"}'
    assert claimed.headers == {"x-github-event": "issues"}
    again = store.claim_event("waiting", now=100.0, lease_s=60)
    assert again is not None
    assert again.body == b'{"action": "opened"}'


def _store_with_one_webhook(engine: Engine, revision: str) -> str:
    """A store at `revision` (0007 or 0008: `events` still has `delivery_id`) holding one
    accepted webhook, github's delivery d-1; its event id."""
    migrate.upgrade(engine, revision)
    event_id = event_id_for("github", "d-1")
    row = _event_row(event_id) | {"delivery_id": "d-1"}
    body = {"event_id": event_id, "headers": row.pop("headers"), "body": row.pop("body")}
    with engine.begin() as conn:
        conn.execute(insert(EVENTS_0008).values(row))
        conn.execute(insert(event_bodies).values(body))
    return event_id


# --- 0008: the primary key alone refuses a second copy of an inbound event -------------------


def test_upgrading_a_0007_store_keeps_its_events_and_still_refuses_a_second_copy(
    engine: Engine,
) -> None:
    # given a store the previous release wrote, with one accepted webhook in it
    event_id = _store_with_one_webhook(engine, "0007")
    # when the new release opens it
    store = Store(engine)
    store.create_schema()
    # then the second unique index is gone, the row and its body are kept
    assert migrate.current(engine) == migrate.head()
    unique = {u["name"] for u in inspect(engine).get_unique_constraints("events")}
    assert "uq_events_source_delivery" not in unique
    kept = store.get_event(event_id)
    assert kept is not None
    assert kept.body == b'{"action": "opened"}'
    # and the same delivery sent again is still a duplicate, refused by the primary key
    again = NewInbound(
        id=event_id_for("github", "d-1"),
        source="github",
        provider_delivery_id="d-1",
        received_at=2.0,
        headers={},
        body=b"{}",
    )
    [outcome] = store.insert_events([again])
    assert outcome.duplicate
    stored = store.get_event(event_id)
    assert stored is not None
    assert stored.body == b'{"action": "opened"}'


# --- 0009: the provider's delivery id under its own name ------------------------------------


def _downgrade(engine: Engine, revision: str) -> None:
    """What a rollback to an older release runs (the hub itself only ever upgrades)."""
    config = Config()
    config.set_main_option("script_location", str(migrate.SCRIPT_LOCATION))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def test_upgrading_a_0008_store_renames_delivery_id_keeping_every_value_and_the_dedup(
    engine: Engine,
) -> None:
    # given a store the previous release wrote, with one accepted webhook in it
    event_id = _store_with_one_webhook(engine, "0008")
    # when the new release opens it
    store = Store(engine)
    store.create_schema()
    # then the column has its new name and tables.py's shape, and the value is kept
    assert migrate.current(engine) == migrate.head()
    assert _schema(engine) == _expected()
    assert _drift(engine) == []
    kept = store.get_event(event_id)
    assert kept is not None
    assert (kept.provider_delivery_id, kept.body) == ("d-1", b'{"action": "opened"}')
    # and the same delivery sent again is still a duplicate
    again = NewInbound(
        id=event_id,
        source="github",
        provider_delivery_id="d-1",
        received_at=2.0,
        headers={},
        body=b"{}",
    )
    [outcome] = store.insert_events([again])
    assert outcome.duplicate


def test_0009_rolls_back_to_delivery_id_and_forward_again(engine: Engine) -> None:
    # given a store at head with an accepted webhook
    migrate.upgrade(engine)
    _insert_event(engine, "kept")
    # when it is rolled back to 0008, then the old name holds the value
    _downgrade(engine, "0008")
    assert migrate.current(engine) == "0008"
    with engine.connect() as conn:
        assert conn.execute(select(EVENTS_0008.c.delivery_id)).scalars().all() == ["kept"]
    # and upgrading again gives tables.py's schema with the value under the new name
    migrate.upgrade(engine)
    assert _schema(engine) == _expected()
    with engine.connect() as conn:
        assert conn.scalars(select(events.c.provider_delivery_id)).all() == ["kept"]


# --- 0010: pending deliveries looked up by their webhook --------------------------------------


def _delivery_indexes(engine: Engine) -> set[str]:
    return {i["name"] for i in inspect(engine).get_indexes("deliveries") if i["name"]}


def test_0010_adds_the_inbound_index_and_rolls_back_without_it(engine: Engine) -> None:
    # given a store the previous release wrote
    migrate.upgrade(engine, "0009")
    assert "ix_deliveries_inbound" not in _delivery_indexes(engine)
    # when the new release opens it, then deliveries gain the index and tables.py's shape
    migrate.upgrade(engine)
    assert "ix_deliveries_inbound" in _delivery_indexes(engine)
    assert _schema(engine) == _expected()
    # and a rollback to 0009 takes only that index away
    _downgrade(engine, "0009")
    assert "ix_deliveries_inbound" not in _delivery_indexes(engine)
    assert "ix_deliveries_event" in _delivery_indexes(engine)


def test_an_unknown_revision_is_a_store_error_and_leaves_the_store_empty(engine: Engine) -> None:
    with pytest.raises(StoreError, match="could not upgrade the schema to nope"):
        migrate.upgrade(engine, "nope")
    assert migrate.current(engine) is None
    assert _schema(engine) == {}


# --- stores made before migrations -----------------------------------------------------------


def test_a_store_made_before_migrations_is_adopted_with_its_rows_and_gets_missing_indexes(
    store_url: str, engine: Engine
) -> None:
    # given a store as the hub made it before migrations: 0001's tables, no alembic_version,
    # from a release that predates the ordering index, with an event in it
    _store_at_0001(engine, _event_row("old-event"))
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE {migrate.VERSION_TABLE}"))
        conn.execute(text("DROP INDEX ix_deliveries_entity_order"))
    assert migrate.current(engine) is None
    # when the new release opens it
    store = open_store(store_url)
    try:
        # then it is adopted and upgraded, the row is there, the index is back
        assert migrate.current(engine) == migrate.head()
        assert _version_rows(engine) == [migrate.head()]
        row = store.get_event("old-event")
        assert row is not None
        assert row.headers == {"x-github-event": "issues"}
        assert _schema(engine) == _expected()
        assert _drift(engine) == []
    finally:
        store.close()


# --- processes starting together -------------------------------------------------------------


def test_stores_opened_together_on_an_empty_database_all_come_up(store_url: str) -> None:
    # given an ingress and workers started at once (compose up, a k8s rollout), each with
    # its own engine; no retry around create_schema, so any lost race would show
    contenders = 6
    barrier = threading.Barrier(contenders, timeout=10)

    def start(_: int) -> str | None:
        engine = migrate.connect(store_url)
        try:
            barrier.wait()
            Store(engine).create_schema()
        except StoreError as exc:
            return str(exc)
        finally:
            engine.dispose()
        return None

    with ThreadPoolExecutor(max_workers=contenders) as pool:
        outcomes = list(pool.map(start, range(contenders)))
    assert [o for o in outcomes if o is not None] == []
    engine = migrate.connect(store_url)
    try:
        assert _version_rows(engine) == [migrate.head()]
        assert _schema(engine) == _expected()
    finally:
        engine.dispose()


START = """
import sys
from hub.store import Store, migrate
engine = migrate.connect(sys.argv[1])
sys.stdin.readline()  # the starting gun: every process is imported and waiting
Store(engine).create_schema()
print(migrate.current(engine))
"""


@pytest.mark.slow
def test_processes_starting_together_all_migrate_without_error(store_url: str) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", START, store_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for _ in range(4)
    ]
    try:
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = [proc.communicate(timeout=60) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert out.strip() == migrate.head()
    engine = migrate.connect(store_url)
    try:
        assert _version_rows(engine) == [migrate.head()]
    finally:
        engine.dispose()


# --- switchboard db ----------------------------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config file whose store is `store_url`: SQLite is the config's own tmp_path/hub.db."""
    monkeypatch.setenv("SWITCHBOARD_SECRET_GITHUB", "x" * 12)
    if store_url.startswith("postgresql"):
        monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", store_url)
    return write_config(tmp_path)


def test_db_upgrade_and_db_current_print_the_revisions(
    config: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    head = migrate.head()
    assert main(["-c", str(config), "db", "upgrade"]) == 0
    assert capsys.readouterr().out == f"schema upgraded from none to {head}\n"
    assert main(["-c", str(config), "db", "current"]) == 0
    assert capsys.readouterr().out == f"current: {head}\nhead: {head}\n"
    assert main(["-c", str(config), "db", "upgrade", "--revision", head]) == 0
    assert capsys.readouterr().out == f"schema already at {head}\n"
    engine = migrate.connect(store_url)
    try:
        assert _schema(engine) == _expected()
    finally:
        engine.dispose()


def test_db_current_names_an_empty_store_as_behind(
    config: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if store_url.startswith("sqlite"):
        # nothing has created the file yet: say so rather than make an empty one
        assert main(["-c", str(config), "db", "current"]) == 1
        assert "no store at" in capsys.readouterr().err
        assert not (config.parent / "hub.db").exists()
        empty = migrate.connect(store_url)
        with empty.connect():
            pass  # an empty file now exists, as an aborted first start would leave it
        empty.dispose()
    assert main(["-c", str(config), "db", "current"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"current: none\nhead: {migrate.head()}\n")
    assert "switchboard db upgrade" in out


def test_db_upgrade_to_an_unknown_revision_fails_with_a_message(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-c", str(config), "db", "upgrade", "--revision", "nope"]) == 1
    assert "could not upgrade the schema to nope" in capsys.readouterr().err


# --- the developers' alembic command ------------------------------------------------------


@pytest.mark.slow
def test_alembic_check_finds_no_drift_on_a_migrated_store(tmp_path: Path) -> None:
    # the command a developer runs after editing tables.py: a migrated store must match it
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    open_store(url).close()
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", "hub/store/migrations/alembic.ini", "check"],
        cwd=REPO,
        env={**os.environ, "SWITCHBOARD_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "No new upgrade operations detected" in result.stdout + result.stderr
