"""Retention (`switchboard prune`): old raw payloads and attempt logs go, in batches;
recent rows, unfinished work and the rows themselves stay."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.cli import main
from hub.store import AttemptRecord, NewDelivery, NewInbound, Store, open_store
from hub.store.queries import InboundFilter, list_events
from hub.store.retention import prune
from tests.postgres import (  # noqa: F401  (the postgres_url and store_url fixtures)
    postgres_database,
    store_on_each_backend,
)
from tests.support import write_config

DAY = 86400.0
NOW = 1_800_000_000.0


def _event(store: Store, event_id: str, *, at: float, finish: bool = True) -> None:
    store.insert_events(
        [
            NewInbound(
                id=event_id,
                source="github",
                provider_delivery_id=event_id,
                received_at=at,
                headers={"x-github-event": "issues"},
                body=b'{"hello": "world"}',
            )
        ]
    )
    if finish:
        store.claim_event(event_id, now=at, lease_s=60)
        store.finish_event(
            event_id,
            now=at,
            normalized=[],
            new_deliveries=[
                NewDelivery(
                    id=f"d-{event_id}",
                    inbound_id=event_id,
                    event_id=event_id,
                    rule_id="r",
                    action_index=0,
                    connector="log",
                    operation=None,
                    destination="inbox",
                    params={},
                    idempotency_key=f"k-{event_id}",
                )
            ],
        )


def _attempt(store: Store, delivery_id: str, *, at: float, status: str) -> None:
    store.finish_attempt(
        delivery_id,
        AttemptRecord(
            number=1, started_at=at, duration_ms=5, outcome="ok", status_code=200, detail=None
        ),
        status=status,
        now=at,
    )


def test_the_event_search_finds_a_raw_body_until_it_is_pruned(store_url: str) -> None:
    store = open_store(store_url)
    try:
        _event(store, "old", at=NOW - 40 * DAY)
        _event(store, "recent", at=NOW - 1 * DAY)

        def found(q: str) -> list[str]:
            return sorted(e.id for e in list_events(store, InboundFilter(q=q)).items)

        assert found("HELLO") == ["old", "recent"]  # only in the body, any case
        assert prune(store, older_than=NOW - 30 * DAY).payloads == 1
        assert found("hello") == ["recent"]
    finally:
        store.close()


def test_prune_drops_old_payloads_and_attempts_in_batches_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'hub.db'}")
    old = [f"old-{n}" for n in range(7)]
    for event_id in old:
        _event(store, event_id, at=NOW - 40 * DAY)
        _attempt(store, f"d-{event_id}", at=NOW - 40 * DAY, status="delivered")
    _event(store, "recent", at=NOW - 1 * DAY)
    _attempt(store, "d-recent", at=NOW - 1 * DAY, status="delivered")
    _event(store, "unprocessed", at=NOW - 40 * DAY, finish=False)
    _event(store, "retrying", at=NOW - 40 * DAY)
    _attempt(store, "d-retrying", at=NOW - 40 * DAY, status="pending")

    pruned = prune(store, older_than=NOW - 30 * DAY, batch_size=3)

    assert pruned.payloads == 8  # the seven old ones and "retrying" (its event is processed)
    assert pruned.attempts == 7  # not the pending delivery's history, not the recent one
    for event_id in old:
        row = store.get_event(event_id)
        assert row is not None
        assert row.body == b""
        assert row.headers == {}
        assert store.list_attempts(f"d-{event_id}") == []
        assert store.get_delivery(f"d-{event_id}") is not None
    recent = store.get_event("recent")
    assert recent is not None
    assert recent.body == b'{"hello": "world"}'
    assert len(store.list_attempts("d-recent")) == 1
    unprocessed = store.get_event("unprocessed")
    assert unprocessed is not None
    assert unprocessed.body  # still needed by the worker
    assert len(store.list_attempts("d-retrying")) == 1
    assert prune(store, older_than=NOW - 30 * DAY, batch_size=3) == type(pruned)(0, 0)
    store.close()


def test_prune_command_reports_what_it_removed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path)
    store = open_store(f"sqlite:///{tmp_path / 'hub.db'}")
    _event(store, "ancient", at=1_000_000_000.0)
    store.close()
    monkeypatch.setenv("SWITCHBOARD_SECRET_GITHUB", "x" * 12)
    assert main(["-c", str(config), "prune", "--older-than", "30d"]) == 0
    out = capsys.readouterr().out
    assert "pruned 1 raw payloads and 0 attempts" in out
    with pytest.raises(SystemExit) as usage:  # a bad duration is a usage error
        main(["-c", str(config), "prune", "--older-than", "soon"])
    assert usage.value.code == 2
