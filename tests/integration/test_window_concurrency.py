"""Rule windows under concurrency: workers adding to one group key at the same moment
share one group, and a dedupe window fires once (PostgreSQL and SQLite).

Several Store instances stand for worker processes (separate engines and pools); a
barrier releases all their calls together.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import select

from hub.store import Store, open_store, windows
from hub.store.tables import group_events, groups
from tests.postgres import postgres_database  # noqa: F401  (the postgres_url fixture)

T = TypeVar("T")

WORKERS = 8


@pytest.fixture(params=["postgres", "sqlite"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[Store]]:
    if request.param == "postgres":
        request.applymarker(pytest.mark.postgres)
        url = str(request.getfixturevalue("postgres_url"))
    else:
        url = f"sqlite:///{tmp_path / 'hub.db'}"
    opened = [open_store(url) for _ in range(WORKERS)]
    yield opened
    for store in opened:
        store.close()


def _together(calls: list[Callable[[], T]]) -> list[T]:
    """Run every call in its own thread, all released at the same moment."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T:
        start.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def test_events_for_one_key_added_at_once_share_one_group(stores: list[Store]) -> None:
    for round_ in range(3):
        slots = _together(
            [
                lambda n=n, store=store, round_=round_: windows.add_to_group(
                    store,
                    rule_id="digest",
                    key=f"channel-{round_}",
                    event_id=f"e{round_}-{n}",
                    event={"n": n},
                    now=100.0,
                    window_s=60.0,
                    max_events=100,
                )
                for n, store in enumerate(stores)
            ]
        )
        assert all(slot is not None for slot in slots)
        assert len({slot.group_id for slot in slots if slot}) == 1
        assert sum(1 for slot in slots if slot and slot.opened) == 1
    with stores[0].engine.connect() as conn:
        opened = list(conn.execute(select(groups.c.key, groups.c.count)))
        positions = list(conn.execute(select(group_events.c.group_id, group_events.c.position)))
    assert sorted(opened) == [(f"channel-{r}", WORKERS) for r in range(3)]
    by_group: dict[str, list[int]] = {}
    for group_id, position in positions:
        by_group.setdefault(group_id, []).append(position)
    assert sorted(sorted(p) for p in by_group.values()) == [list(range(WORKERS))] * 3


def test_a_dedupe_window_admits_one_of_many_events_arriving_at_once(stores: list[Store]) -> None:
    admitted = _together(
        [
            lambda n=n, store=store: windows.admit(
                store,
                rule_id="once",
                kind="dedupe",
                key="incident-7",
                event_id=f"e{n}",
                now=100.0,
                per_s=300.0,
                limit=1,
            )
            for n, store in enumerate(stores)
        ]
    )
    assert admitted.count(True) == 1
