"""Alembic environment: run the revisions on the connection the hub hands in.

`hub.store.migrate` calls Alembic with `config.attributes["connection"]` set, inside its
own transaction and (on PostgreSQL) its advisory lock, so the whole upgrade is one unit
and processes starting together take turns. Only when a developer runs the `alembic`
command (alembic.ini beside this file) is there no connection: then it opens the store
named by SWITCHBOARD_DATABASE_URL (default: the embedded SQLite file) itself.
"""

from __future__ import annotations

import logging.config
import os

from alembic import context
from sqlalchemy import Connection, create_engine

from hub.store.tables import metadata

#: The store a developer's `alembic` command works on (e.g. for --autogenerate).
DEFAULT_URL = "sqlite:///var/switchboard.db"


def _url() -> str:
    return os.environ.get("SWITCHBOARD_DATABASE_URL") or DEFAULT_URL


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite can barely ALTER a table: batch mode copies it into a new one instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    # Inside the hub's transaction this begins nothing: the caller commits or rolls back.
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate on the caller's connection, or on one of our own (the `alembic` command)."""
    connection = context.config.attributes.get("connection")
    if isinstance(connection, Connection):
        _run(connection)
        return
    engine = create_engine(_url())
    try:
        with engine.connect() as own:
            _run(own)
    finally:
        engine.dispose()


def run_migrations_offline() -> None:
    """Print the SQL instead (`alembic upgrade head --sql`), for a DBA to review or run."""
    url = _url()
    context.configure(
        url=url,
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


if context.config.config_file_name is not None:
    # The `alembic` command with alembic.ini: show its progress. The hub passes no file.
    logging.config.fileConfig(context.config.config_file_name, disable_existing_loggers=False)

if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
