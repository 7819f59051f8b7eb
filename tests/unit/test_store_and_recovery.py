"""The store's claims and the sweeper: a crashed worker never loses or duplicates work."""

from __future__ import annotations

from pathlib import Path

from hub.clock import FakeClock
from hub.pipeline.worker import WorkerService
from hub.runtime import Runtime
from hub.store import NewInbound
from tests.support import (
    fixture_path,
    process_stored,
    settle,
    store_github_event,
    two_processed,
    unreachable_discord_runtime_fixture,  # noqa: F401  (the runtime fixture)
)

BODY = fixture_path("github", "issues", "opened.json").read_bytes()


def _accept(rt: Runtime, delivery: str) -> str:
    return store_github_event(rt, delivery, BODY)


def test_duplicates_within_one_batch_and_across_batches_are_detected(runtime: Runtime) -> None:
    event = NewInbound(
        id="e1", source="github", provider_delivery_id="d1", received_at=0.0, headers={}, body=b"{}"
    )
    first = runtime.store.insert_events([event, event])
    second = runtime.store.insert_events([event])
    assert [o.duplicate for o in first] == [False, True]
    assert [o.duplicate for o in second] == [True]
    assert runtime.store.count_events() == 1


def test_a_duplicate_keeps_the_first_copys_headers_and_body(runtime: Runtime) -> None:
    # given an event stored, then a retry of it whose body differs (same delivery id)
    first = NewInbound(
        id="e1",
        source="github",
        provider_delivery_id="d1",
        received_at=0.0,
        headers={"a": "1"},
        body=b"1",
    )
    retry = NewInbound(
        id="e1",
        source="github",
        provider_delivery_id="d1",
        received_at=1.0,
        headers={"a": "2"},
        body=b"2",
    )
    runtime.store.insert_events([first])
    # when the retry arrives, alone and in a batch with a new event
    new = NewInbound(
        id="e2",
        source="github",
        provider_delivery_id="d2",
        received_at=1.0,
        headers={},
        body=b"new",
    )
    assert [o.duplicate for o in runtime.store.insert_events([retry])] == [True]
    assert [o.duplicate for o in runtime.store.insert_events([retry, new])] == [True, False]
    # then the stored request is the first one, and the new event has its own
    stored = runtime.store.get_event("e1")
    assert stored is not None
    assert (stored.headers, stored.body) == ({"a": "1"}, b"1")
    claimed = runtime.store.claim_event("e2", now=2.0, lease_s=30)
    assert claimed is not None
    assert claimed.body == b"new"


def test_processing_plans_one_delivery_per_action_and_is_idempotent(runtime: Runtime) -> None:
    event_id = _accept(runtime, "d-1")
    outcome = process_stored(runtime, event_id)
    assert outcome is not None
    deliveries = runtime.store.list_deliveries(inbound_id=event_id)
    assert sorted(d.connector for d in deliveries) == ["discord", "log"]
    assert process_stored(runtime, event_id) is None  # done: a redelivered message does nothing
    assert len(runtime.store.list_deliveries(inbound_id=event_id)) == 2


def test_an_event_held_by_a_dead_worker_is_reprocessed_after_its_lease(runtime: Runtime) -> None:
    # given a worker that claimed the event and then died (kill -9) before finishing
    event_id = _accept(runtime, "d-2")
    assert (
        runtime.store.claim_event(event_id, now=runtime.clock.now().timestamp(), lease_s=30)
        is not None
    )
    # when a second worker gets the message while the lease holds, it must not touch it
    assert process_stored(runtime, event_id) is None
    # then, once the lease has run out, the sweeper finds it and processing completes once
    assert isinstance(runtime.clock, FakeClock)
    runtime.clock.advance(31)
    assert runtime.store.stale_event_ids(
        now=runtime.clock.now().timestamp(), older_than=runtime.clock.now().timestamp() - 30
    ) == [event_id]
    assert process_stored(runtime, event_id) is not None
    assert len(runtime.store.list_deliveries(inbound_id=event_id)) == 2


def test_sweeper_re_enqueues_received_events_whose_message_was_lost(runtime: Runtime) -> None:
    # given an event stored, but the process died before the broker got its id
    event_id = _accept(runtime, "d-3")
    service = WorkerService(runtime)
    assert isinstance(runtime.clock, FakeClock)
    runtime.clock.advance(5)
    assert service.sweep_once() == 0  # younger than the lease: it may still be queued
    runtime.clock.advance(30)
    assert service.sweep_once() == 1
    broker_queue = runtime.queue.broker.queues["events"]  # type: ignore[attr-defined]
    message_ids = [m for m in broker_queue.queue]
    assert len(message_ids) == 1
    assert event_id.encode() in message_ids[0]


def test_a_delivery_claimed_by_a_dead_worker_is_sent_again_after_its_lease(
    runtime: Runtime,
) -> None:
    event_id = _accept(runtime, "d-4")
    process_stored(runtime, event_id)
    [log_delivery] = [
        d for d in runtime.store.list_deliveries(inbound_id=event_id) if d.connector == "log"
    ]
    now = runtime.clock.now().timestamp()
    assert runtime.store.claim_delivery(log_delivery.id, now=now, lease_s=30) is not None
    assert runtime.store.claim_delivery(log_delivery.id, now=now + 1, lease_s=30) is None
    # The expired claim is stale, and so is the discord delivery nobody ever picked up.
    stale = set(runtime.store.stale_deliveries(now=now + 31, older_than=now + 1))
    assert stale == {
        (log_delivery.id, "log"),
        *(
            (d.id, "discord")
            for d in runtime.store.list_deliveries(inbound_id=event_id)
            if d.connector == "discord"
        ),
    }
    again = runtime.store.claim_delivery(log_delivery.id, now=now + 31, lease_s=30)
    assert again is not None
    assert again.attempts == 2


def test_the_sweeper_leaves_a_delivery_waiting_behind_its_entity_to_its_predecessor(
    runtime: Runtime,
) -> None:
    first, second = two_processed(runtime, _accept, "d-5", "d-6")
    now = runtime.clock.now().timestamp()
    stale = {d for d, _ in runtime.store.stale_deliveries(now=now + 60, older_than=now + 30)}
    earlier = {d.id for d in runtime.store.list_deliveries(inbound_id=first)}
    later = {d.id for d in runtime.store.list_deliveries(inbound_id=second)}
    assert stale == earlier
    # Once the first ones are delivered, the waiting ones are due for the sweeper too.
    for delivery_id in earlier:
        settle(runtime, delivery_id, "delivered")
    stale = {d for d, _ in runtime.store.stale_deliveries(now=now + 60, older_than=now + 30)}
    assert stale == later


def test_a_claim_that_lost_to_a_cleared_blocker_is_told_to_try_again(runtime: Runtime) -> None:
    first = _accept(runtime, "d-7")
    runtime.clock.advance(1)  # type: ignore[attr-defined]
    second = _accept(runtime, "d-8")
    process_stored(runtime, second)  # a second worker got to the later event first
    now = runtime.clock.now().timestamp()
    [later, *_] = runtime.store.list_deliveries(inbound_id=second)
    assert runtime.store.claim_delivery(later.id, now=now, lease_s=30) is None
    assert runtime.store.claim_hint(later.id, now=now)[0] == "ordering"  # type: ignore[index]
    process_stored(runtime, first)
    assert runtime.store.claim_hint(later.id, now=now)[0] == "blocked"  # type: ignore[index]
    for row in runtime.store.list_deliveries(inbound_id=first):
        settle(runtime, row.id, "delivered")
    # Nothing blocks it now: the message must not be dropped, and the claim succeeds.
    assert runtime.store.claim_hint(later.id, now=now) == ("ready", 0.05)
    assert runtime.store.claim_delivery(later.id, now=now, lease_s=30) is not None


def test_accepting_events_waits_for_another_process_holding_the_write_lock(
    tmp_path: Path,
) -> None:
    """Ingress polls SQLite's lock itself (not SQLite's napping busy handler): a batch
    arriving while another connection writes is stored once the lock is free, and the
    pooled connection gets its normal busy timeout back."""
    import sqlite3
    import threading

    from hub.store import open_store
    from hub.store.engine import SQLITE_BUSY_TIMEOUT_MS

    store = open_store(f"sqlite:///{tmp_path / 'hub.db'}")
    holder = sqlite3.connect(tmp_path / "hub.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's write transaction
    inserted = threading.Event()
    result: list[object] = []

    def accept() -> None:
        result.append(
            store.insert_events(
                [
                    NewInbound(
                        id="ev-locked",
                        source="github",
                        provider_delivery_id="d-locked",
                        received_at=1.0,
                        headers={},
                        body=BODY,
                    )
                ]
            )
        )
        inserted.set()

    thread = threading.Thread(target=accept)
    thread.start()
    try:
        assert not inserted.wait(0.3), "the insert went through while the lock was held"
    finally:
        holder.execute("COMMIT")
        holder.close()
    thread.join(10)
    assert inserted.is_set()
    [[outcome]] = result  # type: ignore[misc]
    assert outcome.id == "ev-locked"
    assert not outcome.duplicate
    assert store.count_events() == 1
    with store.engine.connect() as conn:
        timeouts = {conn.exec_driver_sql("PRAGMA busy_timeout").scalar()}
    assert timeouts == {SQLITE_BUSY_TIMEOUT_MS}
    store.close()


def test_every_distinct_handshake_token_is_kept_until_an_admin_decides(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from hub.store import open_store
    from hub.store.notices import decide_notice, list_notices, record_notice

    store = open_store(f"sqlite:///{tmp_path / 'notices.db'}")
    try:
        at = datetime(2026, 12, 1, tzinfo=UTC)
        record_notice(store, "notion", "token genuine", at, "198.51.100.7")
        for n in range(8):
            record_notice(store, "notion", f"token forged {n}", at, "203.0.113.1")
        record_notice(store, "notion", "token genuine", at, "203.0.113.1")  # seen already
        kept = list_notices(store, "notion")
        assert len(kept) == 9
        genuine = next(n for n in kept if n["notice"] == "token genuine")
        assert genuine["address"] == "198.51.100.7"
        assert decide_notice(store, "notion", kept[0]["id"], confirm=False, at=1.0)
        assert len(list_notices(store, "notion")) == 8
        assert decide_notice(store, "notion", genuine["id"], confirm=True, at=2.0)
        assert [(n["notice"], n["status"]) for n in list_notices(store, "notion")] == [
            ("token genuine", "confirmed")
        ]
    finally:
        store.close()
