"""The store's guarantees on PostgreSQL: dedup, exclusive claims, sweeping, replay, end to end.

The same behaviour is covered on SQLite in tests/unit/test_store_and_recovery.py; here two
Store instances stand for two processes (separate engines, separate connection pools).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import insert
from starlette.testclient import TestClient

from hub.app import create_app
from hub.clock import FakeClock
from hub.errors import StoreError
from hub.events import event_id_for
from hub.plugins import load_plugins
from hub.runtime import Runtime, build_runtime
from hub.store import AttemptRecord, NewInbound, Store, batches, open_store
from hub.store.events import event_values
from hub.store.replay import replay
from hub.store.tables import events, metadata
from tests.fakes.discord import FakeDiscord
from tests.postgres import postgres_database  # noqa: F401  (the postgres_url fixture)
from tests.support import (
    fixture_path,
    github_headers,
    make_settings,
    process_stored,
    two_processed,
    wait_until,
)

pytestmark = pytest.mark.postgres

BODY = fixture_path("github", "issues", "opened.json").read_bytes()
T = TypeVar("T")
R = TypeVar("R")


@pytest.fixture
def runtime(tmp_path: Path, postgres_url: str) -> Iterator[Runtime]:
    settings = make_settings(
        tmp_path,
        discord_url="http://127.0.0.1:9/api/webhooks/1/t",
        lease_seconds=30,
        environ={"SWITCHBOARD_DATABASE_URL": postgres_url},
    )
    rt = build_runtime(settings, load_plugins(), clock=FakeClock())
    assert rt.store.engine.dialect.name == "postgresql"
    yield rt
    rt.close()


@pytest.fixture
def two_stores(postgres_url: str) -> Iterator[tuple[Store, Store]]:
    """Two stores on one database, as two worker processes would have."""
    first = open_store(postgres_url)
    second = open_store(postgres_url)
    yield first, second
    first.close()
    second.close()


def _new_event(delivery: str, *, received_at: float = 0.0) -> NewInbound:
    return NewInbound(
        id=event_id_for("github", delivery),
        source="github",
        provider_delivery_id=delivery,
        received_at=received_at,
        headers={"x-github-event": "issues", "content-type": "application/json"},
        body=BODY,
    )


def _accept(rt: Runtime, delivery: str) -> str:
    event = _new_event(delivery, received_at=rt.clock.now().timestamp())
    [outcome] = rt.store.insert_events([event])
    assert not outcome.duplicate
    return event.id


def _race(items: list[T], contenders: list[Callable[[T], R]]) -> list[list[R]]:
    """Run every contender on every item, all contenders released together per item."""
    results: list[list[R]] = []
    with ThreadPoolExecutor(max_workers=len(contenders)) as pool:
        for item in items:
            barrier = threading.Barrier(len(contenders), timeout=10)

            def go(fn: Callable[[T], R], item: T = item, barrier: threading.Barrier = barrier) -> R:
                barrier.wait()
                return fn(item)

            results.append(list(pool.map(go, contenders)))
    return results


def _ok(now: float) -> AttemptRecord:
    return AttemptRecord(
        number=1, started_at=now, duration_ms=1.0, outcome="ok", status_code=200, detail=""
    )


# --- opening the store -----------------------------------------------------------------------


def test_processes_starting_together_on_an_empty_database_all_open_the_store(
    postgres_url: str,
) -> None:
    # given an ingress and workers started at once (docker compose up, a k8s rollout);
    # unguarded, their CREATE TABLEs race (UniqueViolation on pg_type_typname_nsp_index)
    def start(_: int) -> str | None:
        try:
            open_store(postgres_url).close()
        except StoreError as exc:
            return str(exc)
        return None

    for _ in range(5):
        [outcomes] = _race([0], [start] * 6)
        # then every one of them is up
        assert [o for o in outcomes if o is not None] == []
        store = open_store(postgres_url)
        with store.engine.begin() as conn:
            metadata.drop_all(conn)
            # and the version table, so the next round migrates a truly empty database
            conn.exec_driver_sql("DROP TABLE alembic_version")
        store.close()


# --- insert_events: de-duplication --------------------------------------------------------


def test_duplicates_within_one_batch_and_across_batches_are_detected(
    two_stores: tuple[Store, Store],
) -> None:
    store, other = two_stores
    event = _new_event("d1")
    assert [o.duplicate for o in store.insert_events([event, event])] == [False, True]
    assert [o.duplicate for o in store.insert_events([event])] == [True]
    # Another process's batch mixing the known event with a new one.
    fresh = _new_event("d2")
    assert [o.duplicate for o in other.insert_events([fresh, event])] == [False, True]
    assert store.count_events() == 2
    row = store.get_event(event.id)
    assert row is not None
    assert row.body == BODY  # bytea round-trips as bytes
    assert row.headers == {"x-github-event": "issues", "content-type": "application/json"}


def test_racing_batches_with_the_same_events_store_each_event_once(
    two_stores: tuple[Store, Store],
) -> None:
    batches = [[_new_event(f"race-{i}"), _new_event(f"race-{i + 1}")] for i in range(0, 40, 2)]
    store, other = two_stores
    _race(batches, [store.insert_events, other.insert_events])
    assert store.count_events() == 40


def test_an_event_committed_by_another_process_mid_batch_is_reported_duplicate(
    two_stores: tuple[Store, Store],
) -> None:
    # given another ingress process whose batch with the same event is not committed yet
    store, _ = two_stores
    event = _new_event("mid-batch")
    with store.engine.connect() as other:
        other.begin()
        other.execute(insert(events).values(event_values(event)))
        # when this process stores the same event (its INSERT waits for the other's lock)
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(store.insert_events, [event])
            wait_until(
                lambda: _waiting_on_a_lock(store),
                10,
                "the second insert waits on the first transaction's row lock",
            )
            other.commit()
            [outcome] = pending.result(timeout=10)
    # then exactly one of the two requests may be told "new" (a SELECT-then-INSERT told both)
    assert outcome.duplicate


def _waiting_on_a_lock(store: Store) -> bool:
    with store.engine.connect() as conn:
        waiting = conn.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).scalar()
    return bool(waiting)


# --- claims: exclusive under concurrency ----------------------------------------------------


def test_concurrent_claims_of_an_event_have_exactly_one_winner(
    two_stores: tuple[Store, Store],
) -> None:
    store, other = two_stores
    ids = [o.id for o in store.insert_events([_new_event(f"claim-{i}") for i in range(30)])]
    results = _race(
        ids,
        [
            lambda i: store.claim_event(i, now=100.0, lease_s=30),
            lambda i: other.claim_event(i, now=100.0, lease_s=30),
        ],
    )
    for event_id, pair in zip(ids, results, strict=True):
        winners = [r for r in pair if r is not None]
        assert len(winners) == 1, f"{event_id}: {len(winners)} claims succeeded"
        assert winners[0].attempts == 1
        assert winners[0].status == "processing"
    # While the lease holds nobody else gets it; once it ran out exactly one worker does.
    assert store.claim_event(ids[0], now=129.0, lease_s=30) is None
    again = _race(
        [ids[0]],
        [
            lambda i: store.claim_event(i, now=131.0, lease_s=30),
            lambda i: other.claim_event(i, now=131.0, lease_s=30),
        ],
    )
    assert sum(r is not None for r in again[0]) == 1


def test_concurrent_claims_of_a_delivery_have_exactly_one_winner(
    runtime: Runtime, postgres_url: str
) -> None:
    event_id = _accept(runtime, "deliv-1")
    assert process_stored(runtime, event_id) is not None
    delivery_ids = [d.id for d in runtime.store.list_deliveries(inbound_id=event_id)]
    assert len(delivery_ids) == 2
    other = open_store(postgres_url)
    try:
        now = runtime.clock.now().timestamp()
        results = _race(
            delivery_ids * 5,  # claims after the first one must all lose (lease held)
            [
                lambda i: runtime.store.claim_delivery(i, now=now, lease_s=30),
                lambda i: other.claim_delivery(i, now=now, lease_s=30),
            ],
        )
    finally:
        other.close()
    wins = [r for pair in results for r in pair if r is not None]
    assert sorted(r.id for r in wins) == sorted(delivery_ids)
    assert all(r.attempts == 1 and r.status == "sending" for r in wins)


def test_a_later_delivery_for_the_same_entity_waits_for_the_earlier_one(
    runtime: Runtime,
) -> None:
    _, second = two_processed(runtime, _accept, "order-1", "order-2")
    now = runtime.clock.now().timestamp()
    [later_log] = [
        d for d in runtime.store.list_deliveries(inbound_id=second) if d.connector == "log"
    ]
    assert runtime.store.claim_delivery(later_log.id, now=now, lease_s=30) is None
    assert runtime.store.claim_hint(later_log.id, now=now) == ("blocked", 2.0)


# --- the sweeper's queries ------------------------------------------------------------------


def test_an_event_held_by_a_dead_worker_is_stale_after_its_lease(runtime: Runtime) -> None:
    event_id = _accept(runtime, "stale-1")
    now = runtime.clock.now().timestamp()
    assert runtime.store.claim_event(event_id, now=now, lease_s=30) is not None
    assert process_stored(runtime, event_id) is None  # held: a second worker leaves it alone
    assert runtime.store.stale_event_ids(now=now + 29, older_than=now - 1) == []
    runtime.clock.advance(31)  # type: ignore[attr-defined]
    later = runtime.clock.now().timestamp()
    assert runtime.store.stale_event_ids(now=later, older_than=later - 30) == [event_id]
    assert process_stored(runtime, event_id) is not None
    assert len(runtime.store.list_deliveries(inbound_id=event_id)) == 2
    assert runtime.store.stale_event_ids(now=later + 100, older_than=later + 100) == []


def test_a_received_event_whose_message_was_lost_is_stale_once_older_than_the_lease(
    runtime: Runtime,
) -> None:
    event_id = _accept(runtime, "stale-2")
    now = runtime.clock.now().timestamp()
    assert runtime.store.stale_event_ids(now=now + 5, older_than=now + 5 - 30) == []
    assert runtime.store.stale_event_ids(now=now + 35, older_than=now + 35 - 30) == [event_id]


def test_stale_deliveries_are_expired_claims_and_unclaimed_due_rows_without_predecessor(
    runtime: Runtime,
) -> None:
    first, second = two_processed(runtime, _accept, "stale-3", "stale-4")
    now = runtime.clock.now().timestamp()
    earlier = {d.id: d.connector for d in runtime.store.list_deliveries(inbound_id=first)}
    later = {d.id: d.connector for d in runtime.store.list_deliveries(inbound_id=second)}
    stale = dict(runtime.store.stale_deliveries(now=now + 60, older_than=now + 30))
    assert stale == earlier  # the second event's rows wait behind the first's
    [log_id] = [i for i, c in earlier.items() if c == "log"]
    assert runtime.store.claim_delivery(log_id, now=now, lease_s=30) is not None
    # A live claim is not stale; an expired one is.
    assert log_id not in dict(runtime.store.stale_deliveries(now=now + 10, older_than=now + 10))
    assert log_id in dict(runtime.store.stale_deliveries(now=now + 31, older_than=now))
    for delivery_id in earlier:
        assert runtime.store.claim_delivery(delivery_id, now=now + 31, lease_s=30) is not None
        runtime.store.finish_attempt(
            delivery_id, _ok(now + 31), status="delivered", now=now + 31, ref="m-1"
        )
    stale = dict(runtime.store.stale_deliveries(now=now + 90, older_than=now + 60))
    assert stale == later


# --- replay ---------------------------------------------------------------------------------


def test_a_dead_delivery_replayed_is_claimable_again_and_delivered_is_left_alone(
    runtime: Runtime,
) -> None:
    event_id = _accept(runtime, "replay-1")
    process_stored(runtime, event_id)
    now = runtime.clock.now().timestamp()
    rows = {d.connector: d for d in runtime.store.list_deliveries(inbound_id=event_id)}
    for connector, status in (("discord", "dead"), ("log", "delivered")):
        assert runtime.store.claim_delivery(rows[connector].id, now=now, lease_s=30) is not None
        runtime.store.finish_attempt(
            rows[connector].id, _ok(now), status=status, now=now, last_error=None
        )

    result = replay(runtime.store, [event_id], now=now + 5, due_at=now + 5)

    assert result.delivery_ids == [(rows["discord"].id, "discord")]
    assert result.skipped == [rows["log"].id]
    assert result.event_ids == [event_id]
    again = runtime.store.get_delivery(rows["discord"].id)
    assert again is not None
    # A replay keeps the history (one attempt made) and starts a fresh retry budget.
    assert (again.status, again.attempts, again.next_attempt_at) == ("pending", 1, now + 5)
    assert (again.retry_base_attempts, again.retry_since) == (1, now + 5)
    event = runtime.store.get_event(event_id)
    assert event is not None
    assert event.status == "received"
    # The replayed event is re-processed once, and plans nothing new (keys are unique).
    assert process_stored(runtime, event_id) is not None
    assert len(runtime.store.list_deliveries(inbound_id=event_id)) == 2
    claimed = runtime.store.claim_delivery(rows["discord"].id, now=now + 5, lease_s=30)
    assert claimed is not None
    assert claimed.attempts == 2
    forced = replay(runtime.store, [rows["log"].id], now=now + 6, due_at=now + 6, force=True)
    assert forced.delivery_ids == [(rows["log"].id, "log")]


# --- the hub end to end ---------------------------------------------------------------------


def test_embedded_hub_on_postgres_delivers_every_event_exactly_once(
    tmp_path: Path, postgres_url: str, discord: tuple[FakeDiscord, str]
) -> None:
    fake, url = discord
    settings = make_settings(
        tmp_path, discord_url=url, environ={"SWITCHBOARD_DATABASE_URL": postgres_url}
    )
    runtime = build_runtime(settings, load_plugins())
    assert runtime.store.engine.dialect.name == "postgresql"
    deliveries = [f"pg-e2e-{i}" for i in range(12)]
    with TestClient(create_app(runtime, run_worker=True)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        ids = []
        for delivery in deliveries:
            response = client.post(
                "/hooks/github",
                content=BODY,
                headers=github_headers(BODY, event="issues", delivery=delivery),
            )
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
        # The provider retrying a delivery is acknowledged as a duplicate.
        again = client.post(
            "/hooks/github",
            content=BODY,
            headers=github_headers(BODY, event="issues", delivery=deliveries[0]),
        )
        assert again.status_code == 200, again.text
        assert again.json() == {"id": ids[0], "duplicate": True}

        def all_delivered() -> bool:
            rows = [r for i in ids for r in runtime.store.list_deliveries(inbound_id=i)]
            return len(rows) == 2 * len(ids) and all(r.status == "delivered" for r in rows)

        wait_until(all_delivered, 30, "every action of every event delivered")
    runtime.close()

    contents = sorted(r.body["content"] for r in fake.received if r.status == 200)
    assert contents == sorted(f"opened {i}" for i in ids)
    inbox = (tmp_path / "inbox.log").read_text().splitlines()
    assert len(inbox) == len(ids)
    assert all(sum(i in line for line in inbox) == 1 for i in ids)


def test_two_workers_claiming_overlapping_batches_take_disjoint_rows(
    two_stores: tuple[Store, Store],
) -> None:
    # given 120 events and two workers whose messages overlap (a redelivery, a sweep)
    store, other = two_stores
    ids = [o.id for o in store.insert_events([_new_event(f"batch-{i}") for i in range(120)])]

    def claim(s: Store, batch: list[str]) -> list[str]:
        with s.engine.begin() as conn:
            return [row.id for row in batches.claim_events(conn, batch, now=100.0, lease_s=30)]

    # when both claim their batch at the same moment (FOR UPDATE SKIP LOCKED)
    [[first, second]] = _race(
        [(ids[:80], ids[40:])],
        [lambda b: claim(store, b[0]), lambda b: claim(other, b[1])],
    )
    # then no row is taken twice and every row is taken
    assert not set(first) & set(second)
    assert set(first) | set(second) == set(ids)
    with store.engine.begin() as conn:
        again = batches.claim_events(conn, ids, now=101.0, lease_s=30)
    assert again == []  # all leased now
