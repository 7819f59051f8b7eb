"""Concurrent sweepers hand each stale row out once per lease (PostgreSQL SKIP LOCKED, SQLite).

Two Store instances stand for two worker processes (separate engines and pools); their
sweeps run in threads at the same moment, in small batches so that they interleave.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest

from hub.store import NewDelivery, NewInbound, Store, open_store
from tests.postgres import postgres_database  # noqa: F401  (the postgres_url fixture)

T = TypeVar("T")

ROWS = 200
LEASE_S = 30.0
#: When the sweeps run: every row below is overdue by then.
NOW = 1_000.0


@pytest.fixture(params=["postgres", "sqlite"])
def two_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    if request.param == "postgres":
        request.applymarker(pytest.mark.postgres)
        url = str(request.getfixturevalue("postgres_url"))
    else:
        url = f"sqlite:///{tmp_path / 'hub.db'}"
    first, second = open_store(url), open_store(url)
    yield first, second
    first.close()
    second.close()


def _seed(store: Store) -> tuple[set[str], set[str]]:
    """ROWS stale events and ROWS stale deliveries, a quarter of each an expired claim."""
    store.insert_events(
        [
            NewInbound(
                id=f"ev-{n:03d}",
                source="github",
                provider_delivery_id=f"d-{n}",
                received_at=0.0,
                headers={},
                body=b"{}",
            )
            for n in range(ROWS)
        ]
    )
    planned = [
        NewDelivery(
            id=f"dl-{n:03d}",
            inbound_id="ev-000",
            event_id=f"ev-{n:03d}",
            rule_id="r",
            action_index=n,
            connector="log",
            operation=None,
            destination="inbox",
            params={},
            idempotency_key=f"key-{n}",
        )
        for n in range(ROWS)
    ]
    store.add_deliveries("ev-000", planned, now=0.0)
    # Claimed by a worker that then died: the leases ran out long before NOW.
    for n in range(0, ROWS, 4):
        assert store.claim_event(f"ev-{n:03d}", now=1.0, lease_s=LEASE_S) is not None
        assert store.claim_delivery(f"dl-{n:03d}", now=1.0, lease_s=LEASE_S) is not None
    return {f"ev-{n:03d}" for n in range(ROWS)}, {f"dl-{n:03d}" for n in range(ROWS)}


def _both(
    stores: tuple[Store, Store], sweep: Callable[[Store], list[T]]
) -> tuple[list[T], list[T]]:
    """Run `sweep` on both stores at the same moment, each until it finds nothing more."""
    start = threading.Barrier(2)

    def drain(store: Store) -> list[T]:
        start.wait()
        out: list[T] = []
        while batch := sweep(store):
            out.extend(batch)
        return out

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(drain, stores)
    return first, second


def _events(now: float) -> Callable[[Store], list[str]]:
    return lambda s: s.stale_event_ids(now=now, older_than=now - LEASE_S, limit=7)


def _deliveries(now: float) -> Callable[[Store], list[str]]:
    return lambda s: [d for d, _ in s.stale_deliveries(now=now, older_than=now - LEASE_S, limit=7)]


def _assert_split_exactly_once(handed: tuple[list[str], list[str]], expected: set[str]) -> None:
    counts = Counter(handed[0] + handed[1])
    assert {k: n for k, n in counts.items() if n > 1} == {}  # nobody got a row twice
    assert set(counts) == expected  # and no row was left out


def test_two_sweepers_hand_each_stale_row_out_once_per_lease(
    two_stores: tuple[Store, Store],
) -> None:
    # given 200 events and 200 deliveries whose messages were lost or whose claims expired
    first, _ = two_stores
    event_ids, delivery_ids = _seed(first)
    # when two sweepers run at once, then each row goes to exactly one of them
    _assert_split_exactly_once(_both(two_stores, _events(NOW)), event_ids)
    _assert_split_exactly_once(_both(two_stores, _deliveries(NOW)), delivery_ids)
    # and while the sweep lease holds, no sweeper hands any of them out again
    within = NOW + LEASE_S - 1
    assert _both(two_stores, _events(within)) == ([], [])
    assert _both(two_stores, _deliveries(within)) == ([], [])
    # once it has passed with the rows still unclaimed (the messages were lost again),
    # each goes out once more, again to exactly one sweeper
    after = NOW + LEASE_S + 1
    _assert_split_exactly_once(_both(two_stores, _events(after)), event_ids)
    _assert_split_exactly_once(_both(two_stores, _deliveries(after)), delivery_ids)


def test_a_swept_row_is_claimed_at_once_by_the_worker_that_gets_its_message(
    two_stores: tuple[Store, Store],
) -> None:
    sweeper, worker = two_stores
    _seed(sweeper)
    assert set(sweeper.stale_event_ids(now=NOW, older_than=NOW - LEASE_S)) >= {"ev-000", "ev-001"}
    assert set(d for d, _ in sweeper.stale_deliveries(now=NOW, older_than=NOW - LEASE_S)) >= {
        "dl-000",
        "dl-001",
    }
    # ev-000 / dl-000 were expired claims (released by the sweep), the others never claimed
    for event_id in ("ev-000", "ev-001"):
        row = worker.claim_event(event_id, now=NOW, lease_s=LEASE_S)
        assert row is not None
        assert row.status == "processing"
    released = worker.claim_delivery("dl-000", now=NOW, lease_s=LEASE_S)
    assert released is not None
    assert released.attempts == 2  # the attempt lost with the dead worker still counts
    fresh = worker.claim_delivery("dl-001", now=NOW, lease_s=LEASE_S)
    assert fresh is not None
    assert fresh.attempts == 1
    # A claimed row is held: a later sweep (here one that treats every mark as old)
    # hands out the unclaimed rows again, never the claimed ones.
    again = set(sweeper.stale_event_ids(now=NOW + 1, older_than=NOW + 1))
    assert "ev-002" in again
    assert again.isdisjoint({"ev-000", "ev-001"})
