"""Ingress's insert on SQLite goes through sqlite3's cursor (hub/store/events.py): the rows it
writes must read back exactly as the SQLAlchemy insert's do, duplicates must be told apart,
and the driver's errors must arrive as the store's."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from hub.errors import StoreError
from hub.store import NewInbound, open_store
from hub.store.events import event_values
from hub.store.tables import events
from tests.support import fixture_path

BODY = fixture_path("github", "issues", "opened.json").read_bytes()
HEADERS = {
    "content-type": "application/json",
    "x-github-event": "issues",
    "x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    "x-note": "caf\u00e9 \u2603",
}


def inbound(n: int, *, body: bytes = BODY) -> NewInbound:
    return NewInbound(
        id=f"ev-{n}",
        source="github",
        provider_delivery_id=f"d-{n}",
        received_at=1_700_000_000.25 + n,
        headers=dict(HEADERS),
        body=body,
    )


def test_rows_read_back_as_written(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'hub.db'}")
    batch = [inbound(1), inbound(2, body=b'{"zero": "\x00", "big": ' + b"9" * 30 + b"}")]

    outcomes = store.insert_events(batch)

    assert [(o.id, o.duplicate) for o in outcomes] == [("ev-1", False), ("ev-2", False)]
    for e in batch:
        row = store.get_event(e.id)
        assert row is not None
        assert (row.headers, row.body, row.status, row.attempts) == (
            e.headers,
            e.body,
            "received",
            0,
        )
        with store.engine.connect() as conn:
            stored = conn.execute(select(events).where(events.c.id == e.id)).mappings().one()
        assert {k: stored[k] for k in event_values(e)} == event_values(e)
        assert stored["lease_until"] is None
        assert stored["normalized"] is None


def test_duplicates_within_and_across_batches(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'hub.db'}")
    store.insert_events([inbound(1)])

    outcomes = store.insert_events([inbound(1), inbound(2), inbound(2)])

    assert [(o.id, o.duplicate) for o in outcomes] == [
        ("ev-1", True),
        ("ev-2", False),
        ("ev-2", True),
    ]
    assert store.count_events() == 2


def test_driver_errors_arrive_as_store_errors(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'hub.db'}")
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE event_bodies")

    with pytest.raises(StoreError, match=r"could not store accepted events.*event_bodies"):
        store.insert_events([inbound(1)])
    assert store.count_events() == 0  # the events row went back with the transaction


def test_threads_of_one_process_take_turns_on_the_kept_connection(tmp_path: Path) -> None:
    """Ingress's group commit, upkeep and intake may insert at once: every batch lands."""
    import threading

    store = open_store(f"sqlite:///{tmp_path / 'hub.db'}")
    errors: list[BaseException] = []

    def insert_many(first: int) -> None:
        try:
            for n in range(first, first + 40, 4):
                store.insert_events([inbound(n), inbound(n + 1), inbound(n + 2), inbound(n + 3)])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=insert_many, args=(k * 1000,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert store.count_events() == 160
    store.close()
    assert store.engine.pool.checkedout() == 0  # the kept connection went back
