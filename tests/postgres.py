"""A fresh PostgreSQL database per test (skip locally when the server is down, fail in CI).

A test module imports the fixture function, and its tests ask for `postgres_url`:

    from tests.postgres import postgres_database  # noqa: F401  (the postgres_url fixture)

A test run once per backend imports `store_on_each_backend` too and asks for `store_url`.

"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.support import in_ci

#: The server on the test machine (trust auth); the admin database we create ours from.
POSTGRES_HOST = "127.0.0.1"
POSTGRES_PORT = 5432
POSTGRES_USER = "postgres"
POSTGRES_ADMIN_DB = "test"

START_HINT = (
    "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
)


def _admin_connection() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host=POSTGRES_HOST,
        port=POSTGRES_PORT,
        user=POSTGRES_USER,
        dbname=POSTGRES_ADMIN_DB,
        autocommit=True,  # CREATE/DROP DATABASE cannot run inside a transaction
        connect_timeout=3,
    )


def _where() -> str:
    return f"{POSTGRES_USER}@{POSTGRES_HOST}:{POSTGRES_PORT}/{POSTGRES_ADMIN_DB}"


@pytest.fixture(name="postgres_url")
def postgres_database() -> Iterator[str]:
    """A SQLAlchemy URL to a new, empty database, dropped (with its sessions) afterwards."""
    try:
        admin = _admin_connection()
    except psycopg.Error as exc:
        message = f"PostgreSQL at {_where()} is not answering: {exc}".strip()
        if in_ci():
            pytest.fail(f"{message}; it is required in CI ({START_HINT})")
        pytest.skip(f"{message} ({START_HINT})")
    name = f"sbtest_{uuid.uuid4().hex[:16]}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield (f"postgresql+psycopg://{POSTGRES_USER}@{POSTGRES_HOST}:{POSTGRES_PORT}/{name}")
        finally:
            # FORCE ends sessions a test left open (a pool not disposed, a crashed thread).
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(
    name="store_url", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def store_on_each_backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store: a new SQLite file, or a new PostgreSQL database (`postgres_url`)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.db'}"
    postgres_url: str = request.getfixturevalue("postgres_url")
    return postgres_url
