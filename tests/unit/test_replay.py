"""The dead-letter queue: replay by delivery id, event id or --dead; no duplicate sends."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import update

from connectors.base import ConnectorEnv
from hub.pipeline.deliver import DeliveryEngine, DeliveryOutcome
from hub.pipeline.worker import WorkerService
from hub.plugins import load_plugins
from hub.runtime import Runtime
from hub.store import AttemptRecord
from hub.store.replay import dead_since, replay
from hub.store.tables import deliveries
from tests.support import (
    fixture_path,
    process_stored,
    settle,
    store_github_event,
    unreachable_discord_runtime_fixture,  # noqa: F401  (the runtime fixture)
)

BODY = fixture_path("github", "issues", "opened.json").read_bytes()
PLUGINS = load_plugins()


def _processed(rt: Runtime, delivery: str) -> str:
    event_id = store_github_event(rt, delivery, BODY)
    process_stored(rt, event_id)
    return event_id


def test_replaying_a_dead_delivery_makes_it_pending_and_due(runtime: Runtime) -> None:
    event_id = _processed(runtime, "r-1")
    dead, done = runtime.store.list_deliveries(inbound_id=event_id)
    settle(runtime, dead.id, "dead")
    settle(runtime, done.id, "delivered")
    now = runtime.clock.now().timestamp()
    assert dead_since(runtime.store, since=now - 60) == [dead.id]

    result = replay(runtime.store, [event_id], now=now, due_at=now)
    assert result.delivery_ids == [(dead.id, dead.connector)]
    assert result.skipped == [done.id]  # delivered: not sent twice without --force
    row = runtime.store.get_delivery(dead.id)
    assert row is not None
    assert (row.status, row.attempts) == ("pending", 1)  # a replay adds attempts, never resets
    assert runtime.store.get_delivery(done.id).status == "delivered"  # type: ignore[union-attr]

    forced = replay(runtime.store, [done.id], now=now, due_at=now, force=True)
    assert forced.delivery_ids == [(done.id, done.connector)]


def test_an_embedded_replay_is_picked_up_by_the_running_hubs_sweeper(runtime: Runtime) -> None:
    event_id = _processed(runtime, "r-2")
    [first, _] = runtime.store.list_deliveries(inbound_id=event_id)
    settle(runtime, first.id, "dead")
    now = runtime.clock.now().timestamp()
    replay(runtime.store, [first.id, event_id], now=now, due_at=now - 31)
    # The event (to re-run its rules) and both of its unsent deliveries.
    assert WorkerService(runtime).sweep_once() == 3
    broker = runtime.queue.broker
    queued = b"".join(m for q in broker.queues.values() for m in q.queue)  # type: ignore[attr-defined]
    assert event_id.encode() in queued
    assert first.id.encode() in queued


def test_a_replay_adds_attempts_and_keeps_when_the_delivery_was_created(
    runtime: Runtime,
) -> None:
    event_id = _processed(runtime, "r-3")
    dead = runtime.store.list_deliveries(inbound_id=event_id)[0]
    settle(runtime, dead.id, "dead")
    # given a delivery that died an hour ago, when it is replayed
    runtime.clock.advance(3600)  # type: ignore[attr-defined]
    now = runtime.clock.now().timestamp()
    replay(runtime.store, [dead.id], now=now, due_at=now)
    row = runtime.store.get_delivery(dead.id)
    assert row is not None
    assert (row.status, row.attempts, row.created_at) == ("pending", 1, dead.created_at)
    # then its next attempt is its second, and the row and its history agree
    claimed = runtime.store.claim_delivery(dead.id, now=now, lease_s=30)
    assert claimed is not None
    assert claimed.attempts == 2
    runtime.store.finish_attempt(
        dead.id,
        AttemptRecord(
            number=claimed.attempts,
            started_at=now,
            duration_ms=1,
            outcome="ok",
            status_code=200,
            detail="ok",
        ),
        status="delivered",
        now=now,
    )
    after = runtime.store.get_delivery(dead.id)
    assert after is not None
    history = runtime.store.list_attempts(dead.id)
    assert [a.number for a in history] == [1, 2]
    assert (after.attempts, after.created_at) == (len(history), dead.created_at)


def test_a_replay_gives_a_delivery_that_used_every_attempt_a_fresh_retry_budget(
    runtime: Runtime,
) -> None:
    # given a Discord delivery that died after every one of its 8 attempts, a day ago
    event_id = _processed(runtime, "r-4")
    [dead] = [
        d for d in runtime.store.list_deliveries(inbound_id=event_id) if d.connector == "discord"
    ]
    settle(runtime, dead.id, "dead")
    with runtime.store.engine.begin() as conn:
        conn.execute(update(deliveries).where(deliveries.c.id == dead.id).values(attempts=8))
    runtime.clock.advance(2 * 24 * 3600)  # type: ignore[attr-defined]
    now = runtime.clock.now().timestamp()
    # when it is replayed and Discord answers 503 to the replay's first try
    replay(runtime.store, [dead.id], now=now, due_at=now)

    async def send_once() -> DeliveryOutcome:
        unavailable = httpx.MockTransport(lambda _: httpx.Response(503))
        async with httpx.AsyncClient(transport=unavailable) as http:
            env = ConnectorEnv(http=http, base_dir=runtime.settings.base_dir)
            engine = DeliveryEngine(
                store=runtime.store,
                settings=runtime.settings,
                connectors={"discord": PLUGINS.connectors["discord"](env)},
                clock=runtime.clock,
                rng=runtime.rng,
                limiter=runtime.limiter,
                breaker=runtime.breaker,
            )
            return await engine.deliver(dead.id)

    outcome = asyncio.run(send_once())
    # then it is retried (its first try since the replay), not dead at once for being
    # past max_attempts and max_age, and its history still counts every attempt
    assert outcome.decision is not None
    assert outcome.decision.action == "retry", outcome.decision.reason
    row = runtime.store.get_delivery(dead.id)
    assert row is not None
    assert (row.status, row.attempts, row.created_at) == ("pending", 9, dead.created_at)
