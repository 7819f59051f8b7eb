"""The store writer's kept connection: one connection across transactions, a fresh one
after an error, the failed transaction rolled back, and the store's write turn held by
writes only."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from hub.errors import StoreError
from hub.store import Store, open_store
from hub.store.engine import EagerWriter, write_lock_path


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'hub.db'}")
    with opened.engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY)"))
    yield opened
    opened.close()


def _insert(n: int) -> Callable[[Connection], int]:
    def write(conn: Connection) -> int:
        conn.execute(text("INSERT INTO t (n) VALUES (:n)"), {"n": n})
        return id(conn.connection.dbapi_connection)

    return write


def _count(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM t")).scalar_one())


def test_transactions_share_one_connection_and_commit(store: Store) -> None:
    kept = store.kept_connection()
    first = kept.transact(_insert(1), "insert 1")
    second = kept.transact(_insert(2), "insert 2")
    kept.close()
    assert first == second
    assert _count(store) == 2  # each transaction committed, seen from another connection


def test_an_error_rolls_back_names_the_write_and_the_next_one_gets_a_fresh_connection(
    store: Store,
) -> None:
    kept = store.kept_connection()
    kept.transact(_insert(1), "insert 1")

    def insert_then_duplicate(conn: Connection) -> None:
        conn.execute(text("INSERT INTO t (n) VALUES (2)"))
        conn.execute(text("INSERT INTO t (n) VALUES (1)"))  # primary key taken

    with pytest.raises(StoreError, match="could not insert twice"):
        kept.transact(insert_then_duplicate, "insert twice")
    assert _count(store) == 1  # the 2 went with the failed transaction
    kept.transact(_insert(3), "insert 3")  # on a fresh connection from the pool
    kept.close()
    assert _count(store) == 2


def _turn_is_free(store: Store) -> bool:
    """Whether another process could take the store's write turn right now."""
    path = write_lock_path(store.engine)
    assert path is not None
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing the file lets go of a lock taken here
    return True


def test_a_write_holds_the_stores_write_turn_and_a_read_does_not(store: Store) -> None:
    kept = store.kept_connection()
    seen: dict[str, bool] = {}

    def write(conn: Connection) -> None:
        conn.execute(text("INSERT INTO t (n) VALUES (1)"))
        seen["write"] = _turn_is_free(store)

    def read(conn: Connection) -> int:
        seen["read"] = _turn_is_free(store)
        return int(conn.execute(text("SELECT count(*) FROM t")).scalar_one())

    kept.transact(write, "insert 1")
    assert kept.read(read, "count") == 1
    assert seen == {"write": False, "read": True}
    assert _turn_is_free(store)  # given back after the write
    kept.close()


def test_two_writers_in_one_process_take_turns_and_ingress_takes_none(store: Store) -> None:
    """flock belongs to the open file, so two kept connections exclude each other like
    two processes; ingress's eager writer polls SQLite's lock and takes no turn."""
    first, second = store.kept_connection(), store.kept_connection()
    seen: list[bool] = []

    def probe(conn: Connection) -> None:
        seen.append(_turn_is_free(store))

    first.transact(lambda conn: second.read(probe, "probe while a write holds the turn"), "w")
    EagerWriter(store.engine)(probe)
    assert seen == [False, True]
    first.close()
    second.close()


def test_a_store_without_a_file_has_no_turn_to_take() -> None:
    memory = open_store("sqlite://")
    try:
        assert write_lock_path(memory.engine) is None
        kept = memory.kept_connection()
        assert kept.transact(lambda conn: 7, "nothing") == 7
        kept.close()
    finally:
        memory.close()
