"""`switchboard db backup` / `db restore`: consistent while the hub writes, restorable into
a fresh store whose dead deliveries replay; scheduled backups keep the newest few."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from psycopg import sql
from starlette.testclient import TestClient

from hub.app import create_app
from hub.cli import main
from hub.clock import FakeClock
from hub.errors import StoreError
from hub.events import event_id_for
from hub.plugins import load_plugins
from hub.runtime import Runtime, build_runtime
from hub.schedule.upkeep import take_scheduled_backup
from hub.store import NewInbound, open_store
from hub.store.backup import backup, restore, scheduled_backups
from hub.store.replay import replay
from tests.fakes.discord import FakeDiscord
from tests.postgres import (
    _admin_connection,
    postgres_database,  # noqa: F401  (the postgres_url fixture)
)
from tests.support import (
    GITHUB_SECRET,
    fixture_path,
    make_settings,
    post_issue,
    process_stored,
    settle,
    wait_until,
    write_config,
)

LOAD = 150


def _counts(path: Path) -> tuple[int, int]:
    conn = sqlite3.connect(path)
    try:
        return (
            conn.execute("SELECT COUNT(*) FROM events").fetchone()[0],
            conn.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0],
        )
    finally:
        conn.close()


def _dead_delivery(runtime: Runtime) -> tuple[str, str]:
    """An event processed into deliveries, its Discord one dead: (event id, delivery id)."""
    event_id = event_id_for("github", "backup-dead")
    runtime.store.insert_events(
        [
            NewInbound(
                id=event_id,
                source="github",
                provider_delivery_id="backup-dead",
                received_at=runtime.clock.now().timestamp(),
                headers={"x-github-event": "issues"},
                body=fixture_path("github", "issues", "opened.json").read_bytes(),
            )
        ]
    )
    process_stored(runtime, event_id)
    dead = next(
        r for r in runtime.store.list_deliveries(inbound_id=event_id) if r.connector == "discord"
    )
    settle(runtime, dead.id, "dead")  # a 404 from Discord
    return event_id, dead.id


def test_a_backup_taken_under_load_restores_and_its_dead_delivery_replays(
    tmp_path: Path, discord: tuple[FakeDiscord, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = discord
    live_dir, fresh_dir = tmp_path / "live", tmp_path / "fresh"
    live_dir.mkdir()
    fresh_dir.mkdir()
    live = build_runtime(make_settings(live_dir, discord_url=url), load_plugins())
    event_id, dead_id = _dead_delivery(live)
    copy = tmp_path / "backups" / "hub.sqlite3"

    # When webhooks pour in (no worker: the rows stay as received) while the backup runs ...
    with TestClient(create_app(live, run_worker=False)) as client:
        posted: list[str] = []

        def load() -> None:
            for n in range(LOAD):
                posted.append(post_issue(client, f"backup-load-{n}"))

        writer = threading.Thread(target=load)
        writer.start()
        try:
            wait_until(lambda: len(posted) >= 20, 20, "20 webhooks received before the backup")
            done = backup(live.settings.database_url, copy)
        finally:
            writer.join(timeout=60)
    live_events = live.store.count_events()
    live.close()

    # Then the copy is a consistent snapshot taken mid-load ...
    assert (done.events, done.deliveries) == _counts(copy)
    assert 20 < done.events <= live_events == LOAD + 1
    assert done.deliveries == 2  # the dead one's event; the load's are not processed
    assert not copy.with_name(copy.name + ".partial").exists()

    # ... restores into a fresh store with the same counts (through the CLI) ...
    monkeypatch.setenv("SWITCHBOARD_SECRET_GITHUB", GITHUB_SECRET)
    config = write_config(fresh_dir)
    assert main(["-c", str(config), "db", "restore", str(copy)]) == 0
    assert _counts(fresh_dir / "hub.db") == (done.events, done.deliveries)
    # ... refuses to overwrite it again without --force ...
    assert main(["-c", str(config), "db", "restore", str(copy)]) == 1

    # ... and the dead delivery from the backup replays to Discord, once.
    fresh = build_runtime(
        make_settings(fresh_dir, discord_url=url, lease_seconds=600), load_plugins()
    )
    row = fresh.store.get_delivery(dead_id)
    assert row is not None
    assert row.status == "dead"
    with TestClient(create_app(fresh, run_worker=True)):
        now = fresh.clock.now().timestamp()
        result = replay(fresh.store, [dead_id], now=now, due_at=now)
        fresh.queue.enqueue_deliveries(result.delivery_ids)
        wait_until(
            lambda: getattr(fresh.store.get_delivery(dead_id), "status", None) == "delivered",
            10,
            "the replayed delivery delivered",
        )
    fresh.close()
    assert [r.body["content"] for r in fake.received] == [f"opened {event_id}"]


def test_cli_backup_to_a_directory_is_one_line_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWITCHBOARD_SECRET_GITHUB", GITHUB_SECRET)
    config = write_config(tmp_path)
    open_store(f"sqlite:///{tmp_path / 'hub.db'}").close()
    assert main(["-c", str(config), "db", "backup", str(tmp_path / "b.sqlite3")]) == 0
    assert "backed up 0 events and 0 deliveries" in capsys.readouterr().out
    assert main(["-c", str(config), "db", "backup", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.endswith("is a directory; name the backup file to write\n")
    assert err.count("\n") == 1


def test_restore_refuses_a_file_that_is_not_a_store(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database")
    with pytest.raises(StoreError, match="not a Switchboard SQLite backup"):
        restore(junk, f"sqlite:///{tmp_path / 'hub.db'}")


def test_scheduled_backups_run_when_due_and_keep_the_newest(tmp_path: Path) -> None:
    clock = FakeClock()
    settings = make_settings(tmp_path)
    from dataclasses import replace

    from hub.config import BackupSettings

    settings = replace(
        settings, backup=BackupSettings(path=tmp_path / "backups", every_s=3600, keep=2)
    )
    runtime = build_runtime(settings, load_plugins(), clock=clock)
    try:
        taken = [take_scheduled_backup(runtime)]
        taken.append(take_scheduled_backup(runtime))  # not due yet
        for _ in range(3):
            clock.advance(timedelta(hours=1).total_seconds())
            taken.append(take_scheduled_backup(runtime))
    finally:
        runtime.close()
    assert taken[0] is not None
    assert taken[1] is None
    assert all(t is not None for t in taken[2:])
    assert scheduled_backups(tmp_path / "backups") == taken[-2:]


@pytest.fixture
def second_postgres_url(postgres_url: str) -> Iterator[str]:
    """Another empty database on the same server, to restore into."""
    admin = _admin_connection()
    name = f"sbtest_{uuid.uuid4().hex[:16]}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield postgres_url.rsplit("/", 1)[0] + "/" + name
        finally:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.mark.postgres
def test_postgres_backup_restores_into_a_fresh_database(
    postgres_url: str, second_postgres_url: str, tmp_path: Path
) -> None:
    if shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed")
    runtime = build_runtime(
        make_settings(tmp_path, environ={"SWITCHBOARD_DATABASE_URL": postgres_url}),
        load_plugins(),
    )
    with TestClient(create_app(runtime, run_worker=False)) as client:
        for n in range(5):
            post_issue(client, f"pg-backup-{n}")
    runtime.close()
    dump = tmp_path / "hub.pgdump"
    done = backup(postgres_url, dump)
    assert done.events == 5

    restored = restore(dump, second_postgres_url)
    assert (restored.events, restored.deliveries) == (done.events, done.deliveries)
    store = open_store(second_postgres_url)  # at head already: nothing to migrate
    assert store.count_events() == 5
    store.close()
    with pytest.raises(StoreError, match="already holds 5 events"):
        restore(dump, second_postgres_url)
