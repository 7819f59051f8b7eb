"""Batches as the unit of work: a batch is claimed in one statement, a poison row fails
alone, a slow send holds only its own row, and outcomes are recorded as sends finish."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

import httpx
from sqlalchemy import event as sa_event

from connectors.base import ConnectorEnv
from hub.pipeline.deliver import DeliveryEngine
from hub.pipeline.process import process_events
from hub.pipeline.writer import StoreWriter
from hub.plugins import load_plugins
from hub.rules.categories import build_categories
from hub.runtime import Runtime
from hub.store import DeliveryRow
from hub.store.batches import Transaction, claim_deliveries
from tests.support import (
    fixture_path,
    process_stored_batch,
    store_github_event,
    unreachable_discord_runtime_fixture,  # noqa: F401  (the runtime fixture)
)

BODY = fixture_path("github", "issues", "opened.json").read_bytes()
PLUGINS = load_plugins()
T = TypeVar("T")


def _accept(rt: Runtime, delivery: str, body: bytes = BODY, number: int = 1) -> str:
    if body is BODY:
        doc = json.loads(body)
        doc["issue"]["number"] = number  # one entity per event: no ordering between them
        body = json.dumps(doc).encode()
    return store_github_event(rt, delivery, body)


class _StatementCounter:
    """Counts the statements a block sends to the store (the batch's cost in round trips)."""

    def __init__(self, rt: Runtime) -> None:
        self.engine = rt.store.engine
        self.statements: list[str] = []

    def __enter__(self) -> _StatementCounter:
        sa_event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc: object) -> None:
        sa_event.remove(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        self.statements.append(statement.split()[0].upper())


def test_a_batch_of_events_costs_a_claim_and_one_transaction_not_one_per_event(
    runtime: Runtime,
) -> None:
    # given 40 stored events, each planning a Discord and a log delivery
    ids = [_accept(runtime, f"d-{n}", number=n) for n in range(40)]
    # when the process stage takes them as one batch
    with _StatementCounter(runtime) as counted:
        outcome = process_stored_batch(runtime, ids)
    # then every event is processed and every delivery planned...
    assert runtime.store.count_events("processed") == 40
    assert len(outcome.pending) == 80
    # ...with a constant number of statements: one claim and one read of the claimed
    # events' bodies, one insert of all deliveries, one executemany of the finishes, one
    # read of what is pending
    assert counted.statements.count("UPDATE") <= 41  # the claim + the finishes' executemany
    assert counted.statements.count("INSERT") == 1
    assert counted.statements.count("SELECT") == 2


def test_a_poison_event_fails_alone_with_its_reason_and_the_batch_goes_on(
    runtime: Runtime,
) -> None:
    # given a batch where one event's body makes the GitHub normalizer raise
    good = [_accept(runtime, f"g-{n}", number=n) for n in range(5)]
    cut_off = b'{"action": "opened", "issue": {"number": 1}'
    poison = _accept(runtime, "poison", body=cut_off)
    outcome = process_stored_batch(runtime, [*good[:2], poison, *good[2:]])
    # then the poison event is failed with why, and every other event is processed
    failed = runtime.store.get_event(poison)
    assert failed is not None
    assert failed.status == "failed"
    assert failed.error is not None
    assert failed.error.startswith("normalize failed")
    for event_id in good:
        row = runtime.store.get_event(event_id)
        assert row is not None
        assert row.status == "processed"
        assert len(runtime.store.list_deliveries(inbound_id=event_id)) == 2
    assert len(outcome.pending) == 10


def test_a_batch_processed_twice_plans_nothing_new(runtime: Runtime) -> None:
    ids = [_accept(runtime, f"d-{n}", number=n) for n in range(3)]
    first = process_stored_batch(runtime, ids)
    again = process_stored_batch(runtime, ids)  # a redelivered message: the rows are done
    assert len(first.events) == 3
    assert again.events == []
    assert sum(len(runtime.store.list_deliveries(inbound_id=i)) for i in ids) == 6


def test_a_batch_claim_takes_only_what_is_claimable(runtime: Runtime) -> None:
    ids = [_accept(runtime, f"d-{n}", number=n) for n in range(4)]
    process_stored_batch(runtime, ids)
    pending = [d.id for i in ids for d in runtime.store.list_deliveries(inbound_id=i)]
    now = runtime.clock.now().timestamp()
    with runtime.store.engine.begin() as conn:
        first = claim_deliveries(conn, pending[:5], now=now, lease_s=30)
    with runtime.store.engine.begin() as conn:
        second = claim_deliveries(conn, pending, now=now, lease_s=30)
    # the overlap was leased by the first claim: the second takes only the rest
    assert {d.id for d in first} == set(pending[:5])
    assert {d.id for d in second} == set(pending[5:])
    assert all(d.status == "sending" and d.attempts == 1 for d in first + second)


def _discord_deliveries(rt: Runtime, ids: list[str]) -> list[DeliveryRow]:
    """Process the stored events; their planned Discord deliveries."""
    process_stored_batch(rt, ids)
    planned = [d for i in ids for d in rt.store.list_deliveries(inbound_id=i)]
    return [d for d in planned if d.connector == "discord"]


def _discord_engine(rt: Runtime, http: httpx.AsyncClient, writer: StoreWriter) -> DeliveryEngine:
    """The delivery engine with the real Discord connector on `http`."""
    env = ConnectorEnv(http=http, base_dir=rt.settings.base_dir)
    return DeliveryEngine(
        store=rt.store,
        settings=rt.settings,
        connectors={"discord": PLUGINS.connectors["discord"](env)},
        clock=rt.clock,
        rng=rt.rng,
        limiter=rt.limiter,
        breaker=rt.breaker,
        writer=writer,
    )


def _statuses(rt: Runtime, rows: list[DeliveryRow]) -> list[str]:
    """The stored status of each row, in order."""
    return [rt.store.get_delivery(r.id).status for r in rows]  # type: ignore[union-attr]


async def _until(done: Callable[[], bool]) -> None:
    """Wait up to 2 s for `done`; the test's assertions say what was reached."""
    for _ in range(200):
        if done():
            return
        await asyncio.sleep(0.01)


class _FirstHangs:
    """Discord's webhook endpoint on the transport: the first request hangs until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.seen = 0

    async def handler(self, request: httpx.Request) -> httpx.Response:
        self.seen += 1
        if self.seen == 1:
            await self.release.wait()
        return httpx.Response(204)


def test_a_slow_send_holds_only_its_own_row_the_rest_are_recorded(runtime: Runtime) -> None:
    # given five deliveries to Discord (its default limit allows 5 per 2 s), the first of
    # which hangs at the destination
    ids = [_accept(runtime, f"d-{n}", number=n) for n in range(5)]
    rows = _discord_deliveries(runtime, ids)
    fake = _FirstHangs()

    async def scenario() -> tuple[list[str], list[str]]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(fake.handler)) as http:
            writer = StoreWriter(runtime.store)
            engine = _discord_engine(runtime, http, writer)
            batch = asyncio.create_task(engine.deliver_batch([r.id for r in rows]))
            # when every fast send has been recorded while the slow one still hangs
            await _until(lambda: _statuses(runtime, rows).count("delivered") == len(rows) - 1)
            during = _statuses(runtime, rows)
            fake.release.set()
            await batch
            writer.close()
            after = _statuses(runtime, rows)
            return during, after

    during, after = asyncio.run(scenario())
    # then the slow row kept its claim (sending) while the rest were already delivered
    assert sorted(during) == ["delivered"] * (len(rows) - 1) + ["sending"]
    assert after == ["delivered"] * len(rows)


class _HeldCommits(StoreWriter):
    """A writer whose grouped commits (the attempts' records) wait until released."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.release = asyncio.Event()

    async def submit(self, write: Callable[[Transaction], T], doing: str) -> T:
        await self.release.wait()
        return await super().submit(write, doing)


def test_a_destination_slot_is_free_again_once_the_send_is_answered(runtime: Runtime) -> None:
    # given two deliveries to a destination that takes one request at a time
    ids = [_accept(runtime, f"d-{n}", number=n) for n in range(2)]
    rows = _discord_deliveries(runtime, ids)
    seen: list[str] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content)["content"])
        return httpx.Response(204)

    async def scenario() -> tuple[int, list[str]]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
            writer = _HeldCommits(runtime.store)
            engine = _discord_engine(runtime, http, writer)
            one_at_a_time = replace(engine.policy(rows[0]), concurrency=1)
            engine.policy = lambda _row: one_at_a_time  # type: ignore[method-assignment]
            batch = asyncio.create_task(engine.deliver_batch([r.id for r in rows]))
            # when the store is slow to commit the first send's record
            await _until(lambda: len(seen) == len(rows))
            sent_before_any_commit = len(seen)
            writer.release.set()
            await batch
            writer.close()
            after = _statuses(runtime, rows)
            return sent_before_any_commit, after

    sent_before_any_commit, after = asyncio.run(scenario())
    # then the second send did not wait for the first one's commit, only for its answer
    assert sent_before_any_commit == 2
    assert after == ["delivered", "delivered"]


def test_processing_sets_each_events_category_before_rules_see_it(runtime: Runtime) -> None:
    # given `categories:` with one whose keyword the fixture's issue title holds
    categories = build_categories(
        [
            {"name": "docs", "keywords": ["readme"]},
            {"name": "billing", "keywords": ["invoice"]},
        ]
    )
    event_id = _accept(runtime, "d-cat")
    process_events(
        [event_id],
        store=runtime.store,
        sources=runtime.sources,
        ruleset=runtime.rules.current,
        destinations=runtime.settings.destinations,
        clock=runtime.clock,
        lease_s=30,
        categories=categories,
    )
    # then the stored normalized event carries it, as rules matched it
    row = runtime.store.get_event(event_id)
    assert row is not None
    assert row.normalized is not None
    assert [doc["data"]["category"] for doc in row.normalized] == ["docs"]
