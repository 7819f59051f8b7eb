"""Back up and restore the store: SQLite's online backup API, pg_dump/pg_restore for PostgreSQL.

A SQLite backup copies every page in one step inside one read transaction, so it is a
consistent snapshot even while the hub writes (WAL readers never block the writer). The
copy is written beside its target and renamed into place, so a crash never leaves a
half-written file under the backup's name. PostgreSQL backups run `pg_dump --format=custom`
(a consistent snapshot too: one repeatable-read transaction) and restore with `pg_restore`.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from hub.errors import StoreError

#: Names of scheduled backups: `switchboard-<UTC stamp>.<suffix>`; retention only ever
#: deletes files that match, never anything else in the directory.
SCHEDULED_PREFIX = "switchboard-"
#: How long pg_dump / pg_restore may run.
PG_TIMEOUT_S = 3600
#: UTC time in scheduled backups' names (sorts by time).
STAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    #: Rows in `events` and `deliveries` of the copy, so an operator sees what it holds.
    events: int
    deliveries: int


def backup(url: str, dest: Path) -> BackupResult:
    """Copy the store at `url` into the file `dest` (replaced if it exists)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        if _is_sqlite(url):
            _sqlite_copy(_sqlite_path(url, must_exist=True), partial, to_single_file=True)
            counts = _sqlite_counts(partial)
        else:
            target = _pg_url(url)
            _run(
                ["pg_dump", "--format=custom", f"--file={partial}", "--dbname", target.conninfo],
                target.password,
                "pg_dump",
            )
            counts = _pg_counts(url)
        partial.replace(dest)
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(dest, *counts)


def restore(src: Path, url: str, *, force: bool = False) -> BackupResult:
    """Load the backup `src` into the store at `url`; stop the hub first.

    Refuses a store that already holds events unless `force`, so a mistyped URL does not
    overwrite a live hub's history. The caller migrates the result (open_store does).
    """
    if not src.is_file():
        raise StoreError(f"{src}: no such backup file")
    held = _held_events(url)
    if held and not force:
        raise StoreError(
            f"the store already holds {held} events; restoring replaces them all "
            "(stop the hub, then pass --force), or restore into an empty store"
        )
    if _is_sqlite(url):
        if not _is_switchboard_sqlite(src):
            raise StoreError(f"{src} is not a Switchboard SQLite backup (no alembic_version)")
        target = _sqlite_path(url, must_exist=False)
        target.parent.mkdir(parents=True, exist_ok=True)
        _sqlite_copy(src, target, to_single_file=False)
        return BackupResult(src, *_sqlite_counts(target))
    pg = _pg_url(url)
    _run(
        [
            "pg_restore",
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            "--exit-on-error",
            "--dbname",
            pg.conninfo,
            str(src),
        ],
        pg.password,
        "pg_restore",
    )
    return BackupResult(src, *_pg_counts(url))


def backup_suffix(url: str) -> str:
    return "sqlite3" if _is_sqlite(url) else "pgdump"


def scheduled_backups(directory: Path) -> list[Path]:
    """Scheduled backups in `directory`, oldest first (names sort by their UTC stamp)."""
    if not directory.is_dir():
        return []
    return sorted(
        p
        for p in directory.iterdir()
        if p.name.startswith(SCHEDULED_PREFIX) and p.suffix in (".sqlite3", ".pgdump")
    )


def prune_backups(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` scheduled backups; the deleted paths."""
    found = scheduled_backups(directory)
    dropped = found[: max(len(found) - keep, 0)]
    for path in dropped:
        path.unlink(missing_ok=True)
    return dropped


def _is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _sqlite_path(url: str, *, must_exist: bool) -> Path:
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url.endswith(":memory:"):
        raise StoreError("only a SQLite file store can be backed up or restored")
    path = Path(url.removeprefix(prefix))
    if must_exist and not path.is_file():
        raise StoreError(f"{path}: the store file does not exist")
    return path


def _sqlite_copy(src: Path, dest: Path, *, to_single_file: bool) -> None:
    try:
        source = sqlite3.connect(src, timeout=30)
        try:
            target = sqlite3.connect(dest, timeout=30)
            try:
                # pages=-1 (the default): one step, one read transaction, one snapshot.
                source.backup(target)
                if to_single_file:
                    # The copy keeps the source's WAL flag; a backup is one file to move.
                    target.execute("PRAGMA journal_mode=DELETE")
            finally:
                target.close()
        finally:
            source.close()
    except sqlite3.Error as exc:
        raise StoreError(f"could not copy {src} to {dest}: {exc}") from exc


def _is_switchboard_sqlite(path: Path) -> bool:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            found = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='alembic_version'"
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return found is not None


def _sqlite_counts(path: Path) -> tuple[int, int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return tuple(  # type: ignore[return-value]  # two COUNT(*) rows
            int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608
            for table in ("events", "deliveries")
        )
    except sqlite3.Error as exc:
        raise StoreError(f"{path} is not a Switchboard store: {exc}") from exc
    finally:
        conn.close()


def _held_events(url: str) -> int:
    if _is_sqlite(url):
        path = _sqlite_path(url, must_exist=False)
        if not path.is_file() or not _is_switchboard_sqlite(path):
            return 0
        return _sqlite_counts(path)[0]
    try:
        return _pg_counts(url)[0]
    except StoreError:
        return 0  # no tables yet: an empty database


def _pg_counts(url: str) -> tuple[int, int]:
    import psycopg

    pg = _pg_url(url)
    try:
        with psycopg.connect(pg.conninfo, password=pg.password, connect_timeout=10) as conn:
            events = conn.execute("SELECT COUNT(*) FROM events").fetchone()
            deliveries = conn.execute("SELECT COUNT(*) FROM deliveries").fetchone()
    except psycopg.Error as exc:
        raise StoreError(f"could not count rows: {type(exc).__name__}") from exc
    return int(events[0] if events else 0), int(deliveries[0] if deliveries else 0)


@dataclass(frozen=True, slots=True)
class _PgTarget:
    #: libpq URL without the password (command lines are visible to every local user).
    conninfo: str
    password: str | None


def _pg_url(url: str) -> _PgTarget:
    try:
        parsed: URL = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"not a database URL: {exc}") from exc
    if parsed.get_backend_name() != "postgresql":
        raise StoreError(f"backups support SQLite and PostgreSQL, not {parsed.get_backend_name()}")
    plain = parsed.set(drivername="postgresql", password=None)
    return _PgTarget(plain.render_as_string(hide_password=False), parsed.password)


def _run(argv: list[str], password: str | None, tool: str) -> None:
    if shutil.which(tool) is None:
        raise StoreError(f"{tool} is not installed; install the PostgreSQL client tools")
    env = dict(os.environ)
    if password:
        env["PGPASSWORD"] = password  # libpq reads it; it never shows in `ps`
    try:
        done = subprocess.run(  # noqa: S603  (fixed tool, argument list)
            argv, env=env, capture_output=True, text=True, timeout=PG_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise StoreError(f"{tool} took longer than {PG_TIMEOUT_S} s") from exc
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        if password:
            last = last.replace(password, "**********")
        raise StoreError(f"{tool} failed: {last}")


def backup_if_due(
    url: str, directory: Path, *, every_s: float, keep: int, now: datetime
) -> Path | None:
    """Take a scheduled backup when the newest in `directory` is `every_s` old (or there is
    none), then keep only the newest `keep`; the new file, or None when none was due."""
    found = scheduled_backups(directory)
    if found:
        taken = _stamp_of(found[-1])
        if taken is not None and (now - taken).total_seconds() < every_s:
            return None
    dest = directory / f"{SCHEDULED_PREFIX}{now.astimezone(UTC):{STAMP}}.{backup_suffix(url)}"
    backup(url, dest)
    prune_backups(directory, keep)
    return dest


def _stamp_of(path: Path) -> datetime | None:
    try:
        return datetime.strptime(path.stem.removeprefix(SCHEDULED_PREFIX), STAMP).replace(
            tzinfo=UTC
        )
    except ValueError:
        return None
