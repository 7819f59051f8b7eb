"""The batch statements on sqlite3's cursor do what SQLAlchemy's execute of them does.

hub/store/driver.py runs the pipeline's hot statements on SQLite's driver, compiled once
from their SQLAlchemy definitions. These tests run one batch's life (claim, finish,
claim the deliveries, record, look up entities) on two identical stores, once through
the driver and once through SQLAlchemy, and compare every answer and every stored byte.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Float, MetaData, String, Table, select
from sqlalchemy.exc import OperationalError

from hub.store import NewInbound, Store, batches, driver, open_store
from hub.store.deliveries import AttemptRecord, NewDelivery, delivery_values
from hub.store.events import event_payloads
from hub.store.tables import deliveries

NOW = 1_700_000_000.0


def _open(path: Path) -> Store:
    store = open_store(f"sqlite:///{path}")
    store.create_schema()
    return store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = _open(tmp_path / "hub.db")
    yield opened
    opened.close()


def _inbound(n: int) -> NewInbound:
    return NewInbound(
        id=f"e-{n}",
        source="github",
        provider_delivery_id=f"d-{n}",
        received_at=NOW + n,
        headers={"x-github-event": "issues", "x-note": "naïve ✓"},
        body=b'{"action":"opened","n":%d}' % n,
    )


def _planned(n: int, *, entity: str | None) -> NewDelivery:
    return NewDelivery(
        id=f"v-{n}",
        inbound_id=f"e-{n}",
        event_id=f"e-{n}",
        rule_id="issues",
        action_index=0,
        connector="discord",
        operation="post",
        destination="team",
        params={
            "content": f"issue {n} \u2013 \u201copened\u201d",
            "embeds": [{"n": n, "ok": True}],
        },
        idempotency_key=f"k-{n}",
        entity_key=entity,
        seq=NOW + n,
    )


def _life_of_a_batch(store: Store) -> list[Any]:
    """Every answer of one batch's statements, in order."""
    store.insert_events([_inbound(n) for n in range(6)])
    ids = [f"e-{n}" for n in range(6)]
    seen: list[Any] = []
    claimed = store.transact(
        lambda c: batches.claim_events(c, ids, now=NOW + 10, lease_s=30), "claim"
    )
    seen.append(claimed)
    finished = [
        batches.FinishedEvent(id=e.id, normalized=[{"type": "issue.opened", "n": i}])
        for i, e in enumerate(claimed[:5])
    ] + [batches.FinishedEvent(id=claimed[5].id, normalized=None, error="no rule: boom")]
    # Two deliveries share an entity, so the second waits for the first.
    planned = [_planned(n, entity="repo#1" if n < 2 else None) for n in range(5)]
    seen.append(
        store.transact(lambda c: batches.finish_events(c, finished, planned, now=NOW + 11), "f")
    )
    delivery_ids = [f"v-{n}" for n in range(5)]
    rows = store.transact(
        lambda c: batches.claim_deliveries(c, delivery_ids, now=NOW + 12, lease_s=30), "cd"
    )
    seen.append(rows)
    seen.append(store.transact(lambda c: batches.entity_refs(c, rows), "refs"))
    outcomes = [
        batches.AttemptOutcome(
            delivery_id=row.id,
            attempt=AttemptRecord(
                number=1,
                started_at=NOW + 12,
                duration_ms=4.5,
                outcome="ok" if i else "retry",
                status_code=204 if i else 429,
                detail=None if i else "rate limited",
            ),
            status="delivered" if i else "pending",
            now=NOW + 13,
            next_attempt_at=None if i else NOW + 20,
            ref=f"m-{i}" if i else None,
            last_error=None if i else "429",
            params={"content": "masked"} if i == 1 else None,
        )
        for i, row in enumerate(rows)
    ]
    store.transact(lambda c: batches.record_attempts(c, outcomes), "record")
    seen.append(store.transact(lambda c: batches.next_in_line(c, rows), "next"))
    seen.append(store.transact(lambda c: event_payloads(c, ids[:3]), "payloads"))
    return seen


def _stored(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tables the batch wrote, as SQLite holds them (bytes, not types)."""
    db = sqlite3.connect(path)
    try:
        return {
            table: db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()  # noqa: S608
            for table in ("events", "event_bodies", "deliveries", "attempts")
        }
    finally:
        db.close()


def test_the_driver_gives_what_sqlalchemy_gives_and_stores_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given two empty stores
    on_driver, through_sqlalchemy = tmp_path / "driver.db", tmp_path / "sqlalchemy.db"
    # when one batch's life runs on sqlite3's cursor in the first...
    first = _open(on_driver)
    answers = _life_of_a_batch(first)
    first.close()
    # ...and through SQLAlchemy's execute in the second
    monkeypatch.setattr(driver, "on_driver", lambda _conn: False)
    monkeypatch.setattr(batches, "on_driver", lambda _conn: False)
    second = _open(through_sqlalchemy)
    expected = _life_of_a_batch(second)
    second.close()
    # then every answer is the same (rows, JSON values, bytes)...
    assert len(answers[0]) == 6
    assert len(answers[2]) == 4  # v-1 waits behind v-0
    payloads = {k: dict(v) for k, v in answers[5].items()}
    assert payloads == {k: dict(v) for k, v in expected[5].items()}
    assert payloads["e-0"]["headers"]["x-note"] == "naïve ✓"
    assert answers[:5] == expected[:5]
    # ...and SQLite holds the same bytes: JSON spelled alike, NULL where SQLAlchemy puts it
    assert _stored(on_driver) == _stored(through_sqlalchemy)
    events = {row[0]: row for row in _stored(on_driver)["events"]}
    assert events["e-5"][5] is None  # a failed event's normalized: SQL NULL, not 'null'


def test_a_held_write_lock_is_sqlalchemys_operational_error(store: Store, tmp_path: Path) -> None:
    # given another connection holding SQLite's write lock
    other = sqlite3.connect(tmp_path / "hub.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with store.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA busy_timeout=0")
            # when a driver statement writes, then it fails as SQLAlchemy's would: the
            # lock polls and `guard` recognise it
            outcome = batches.AttemptOutcome(
                delivery_id="v-0",
                attempt=AttemptRecord(
                    number=1,
                    started_at=NOW,
                    duration_ms=1.0,
                    outcome="ok",
                    status_code=204,
                    detail=None,
                ),
                status="delivered",
                now=NOW,
            )
            with pytest.raises(OperationalError, match="locked"):
                batches.record_attempts(conn, [outcome])
    finally:
        other.rollback()
        other.close()


def test_an_insert_refuses_rows_with_other_columns_than_it_was_compiled_for(
    store: Store,
) -> None:
    statement = driver.DriverStatement(deliveries.insert(), column_keys=("id", "status"))
    with store.engine.begin() as conn, pytest.raises(TypeError, match="compiled for others"):
        statement.run_many(conn, [{"id": "v-1", "status": "pending", "ref": "m"}])


def test_a_column_left_out_of_an_insert_takes_its_default_only_when_it_is_a_constant(
    store: Store,
) -> None:
    # given rows without `retry_base_attempts` (default 0), the INSERT binds its default
    statement = driver.DriverStatement(
        deliveries.insert(), column_keys=batches.DELIVERY_VALUE_COLUMNS
    )
    row = delivery_values(_planned(1, entity=None), now=NOW)
    with store.engine.begin() as conn:
        statement.run_many(conn, [row])
        assert conn.scalar(select(deliveries.c.retry_base_attempts)) == 0
    # and a default computed per row (a callable) has no place in a plan made once
    table = Table(
        "t",
        MetaData(),
        Column("id", String, primary_key=True),
        Column("at", Float, default=lambda: NOW),
    )
    with store.engine.begin() as conn, pytest.raises(TypeError, match="at: no scalar default"):
        driver.DriverStatement(table.insert(), column_keys=("id",)).run_many(conn, [{"id": "1"}])


def test_an_empty_id_list_is_the_callers_to_skip(store: Store) -> None:
    statement = driver.DriverStatement(
        select(deliveries.c.id).where(deliveries.c.id.in_(batches._IDS))
    )
    with store.engine.begin() as conn:
        assert statement.rows(conn, {"b_ids": ["nope"]}) == []
        with pytest.raises(ValueError, match="empty list"):
            statement.rows(conn, {"b_ids": []})
