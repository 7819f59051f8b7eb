"""The store writer's kept connection: one connection across transactions, a fresh one
after an error, and the failed transaction rolled back."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from hub.errors import StoreError
from hub.store import Store, open_store


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
