"""SQLite's plans for the pipeline's batch statements: rows looked up by id or entity,
never a walk over a whole status (every delivered row, the whole backlog).

SQLite plans without statistics (the hub never runs ANALYZE), so a statement that reads
well can still be planned as a scan of a whole status; that cost grows with the store
and showed only in long load runs (hub/store/statements.py `unindexed`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from hub.store import Store, batches, open_store
from hub.store.approvals import Approval, request_messages
from hub.store.deliveries import DeliveryRow


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'hub.db'}")
    opened.create_schema()
    yield opened
    opened.close()


def _plans(engine: Engine) -> list[tuple[str, list[str]]]:
    """Each SELECT and UPDATE run on `engine` from now on, with SQLite's plan for it."""
    seen: list[tuple[str, list[str]]] = []

    def explain(
        _conn: Any, cursor: Any, statement: str, parameters: Any, _ctx: Any, many: bool
    ) -> None:
        # An executemany's rows each use the one plan; explaining it needs one row's values.
        if many:
            parameters = parameters[0]
        if statement.lstrip().upper().startswith(("SELECT", "UPDATE")):
            db: sqlite3.Connection = cursor.connection
            rows = db.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
            seen.append((statement, [str(r[3]) for r in rows]))

    event.listen(engine, "before_cursor_execute", explain)
    return seen


def _of_kind(plans: list[tuple[str, list[str]]], kind: str) -> list[tuple[str, list[str]]]:
    """The planned statements that are `kind` (SELECT, UPDATE)."""
    return [(s, p) for s, p in plans if s.lstrip().upper().startswith(kind)]


def _assert_looked_up_through(plans: list[tuple[str, list[str]]], step: str) -> None:
    """Every plan takes `step` (an index lookup) and none walks the status index."""
    for statement, plan in plans:
        assert any(step in taken for taken in plan), (statement, plan)
        assert not any("ix_deliveries_status_next" in taken for taken in plan), plan


def _row(n: int) -> DeliveryRow:
    return DeliveryRow(
        id=f"d-{n}",
        inbound_id="e-1",
        event_id="e-1",
        rule_id="r",
        action_index=0,
        connector="discord",
        operation=None,
        destination="team",
        params={},
        idempotency_key="k",
        status="sending",
        attempts=1,
        next_attempt_at=0.0,
        last_error=None,
        ref=None,
        seq=0.0,
        created_at=0.0,
        entity_key=f"github/o/r|issue|o/r#{n}",
    )


@pytest.mark.parametrize("entities", [1, 3, 8, 64])
@pytest.mark.parametrize("read", ["entity_refs", "next_in_line"])
def test_a_batchs_entity_reads_look_up_the_entity_index(
    store: Store, read: str, entities: int
) -> None:
    """From three entities up SQLite chose the status index for the plain statement."""
    plans = _plans(store.engine)
    with store.engine.begin() as conn:
        getattr(batches, read)(conn, [_row(n) for n in range(entities)])
    assert plans, "the read ran no SELECT"
    _assert_looked_up_through(plans, "ix_deliveries_entity_order (entity_key=?)")


@pytest.mark.parametrize("size", [1, 3, 8, 64])
@pytest.mark.parametrize("claim", ["claim_events", "claim_deliveries"])
def test_a_batch_is_claimed_by_its_ids(store: Store, claim: str, size: int) -> None:
    """From three ids up SQLite looked claims up through the status index: the whole
    backlog per claim."""
    plans = _plans(store.engine)
    with store.engine.begin() as conn:
        getattr(batches, claim)(conn, [f"id-{n}" for n in range(size)], now=0.0, lease_s=60.0)
    claims = _of_kind(plans, "UPDATE")
    assert claims, "the claim ran no UPDATE"
    for statement, plan in claims:
        assert "USING INDEX sqlite_autoindex_" in plan[0], plan
        assert "(id=?)" in plan[0], plan
        assert not any("MULTI-INDEX OR" in step for step in plan), (statement, plan)


@pytest.mark.parametrize("size", [1, 3, 8, 64])
def test_a_finished_batchs_pending_deliveries_are_read_by_their_webhooks(
    store: Store, size: int
) -> None:
    """Through the status index this read walked every pending delivery: the backlog of
    a destination that fell behind, inside the process stage's write transaction."""
    plans = _plans(store.engine)
    finished = [batches.FinishedEvent(id=f"e-{n}", normalized=[]) for n in range(size)]
    with store.engine.begin() as conn:
        batches.finish_events(conn, finished, [], now=0.0)
    reads = _of_kind(plans, "SELECT")
    assert reads, "finishing the batch read no pending deliveries"
    _assert_looked_up_through(reads, "ix_deliveries_inbound (inbound_id=?)")


def test_an_approval_requests_messages_are_read_through_its_event(store: Store) -> None:
    """With `status = 'delivered'` indexable SQLite walked every delivered row."""
    approval = Approval(
        id="a-1",
        rule_id="r",
        event_id="e-1",
        title="Ship it?",
        status="pending",
        requester=None,
        deciders=(),
        request={},
        created_at=0.0,
    )
    plans = _plans(store.engine)
    assert request_messages(store, approval) == []
    assert len(plans) == 1
    _assert_looked_up_through(plans, "ix_deliveries_event (event_id=?)")
