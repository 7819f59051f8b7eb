"""Approval requests: only deciders decide, and exactly once (store: migration 0004)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.config import load_settings_text
from hub.config.people import Directory
from hub.plugins import load_plugins
from hub.store import Store, open_store
from hub.store import approvals as stored
from hub.team.approvals import (
    Outcome,
    approval_id,
    approval_step,
    button_id,
    decide_click,
    deciders_for,
    decision_actions,
    parse_button,
)
from tests.postgres import postgres_database  # noqa: F401  (the postgres_url fixture)

CONFIG = """
people:
  ada:
    {name: Ada Lovelace, discord: "576377900236931079", slack: U0ADA00001, roles: [project-manager]}
  grace: {name: Grace Hopper, discord: "576377900236931080", roles: [project-manager]}
  carl: {name: Carl Client, discord: "576377900236931081", roles: [client]}
"""
NOW = 1_795_258_800.0
PAGE = "153104cd-477e-809d-8dc4-ff2d96ae3090"
ADA, GRACE = "576377900236931079", "576377900236931080"  # their Discord ids


def _people() -> Directory:
    settings = load_settings_text(
        CONFIG, environ={}, plugins=load_plugins(), base_dir=Path("/srv/hub")
    )
    return settings.people


@pytest.fixture
def store() -> Iterator[Store]:
    opened = open_store("sqlite://")
    yield opened
    opened.close()


def _request(store: Store, people: Directory, *, expires_at: float | None = None) -> str:
    request_id = approval_id("ev-1", "review", 0)
    stored.create_approval(
        store,
        approval_id=request_id,
        rule_id="review",
        event_id="ev-1",
        title="Write launch post",
        deciders=deciders_for(people, {"role": "project-manager"}),
        request={
            "notion": {
                "workspace": "notion",
                "page": PAGE,
                "approved": {"Status": "Approved"},
                "rejected": {"Status": "Changes requested"},
            },
            "notify": {"connector": "slack", "destination": "team-slack"},
        },
        requester="carl",
        now=NOW,
        expires_at=expires_at,
    )
    stored.add_message(
        store,
        request_id,
        {"platform": "discord", "destination": "team-bot", "ref": "1573654206873600005/77"},
    )
    return request_id


def _click(
    store: Store,
    people: Directory,
    request_id: str,
    *,
    user: str,
    now: float,
    choice: str = "approve",
    event_id: str = "",
) -> Outcome:
    """`user`'s click on the request's `choice` button."""
    return decide_click(
        store,
        people,
        request_id=request_id,
        choice=choice,
        user_id=user,
        now=now,
        event_id=event_id,
    )


def _sweep(store: Store, people: Directory, *, tick: str, now: float) -> dict[str, Any]:
    """One run of the daily-reminder sweep rule, as the tick event `tick`."""
    return approval_step(
        store,
        people,
        rule_id="sweep",
        document={"id": tick},
        params={"sweep": {"remind_every": "1d"}},
        now=now,
    )


def test_button_ids_round_trip_and_fit_discords_limit() -> None:
    request_id = approval_id("ev-1", "review", 0)
    assert len(button_id(request_id, "approve")) <= 100
    assert parse_button(button_id(request_id, "reject")) == (request_id, "reject")
    assert parse_button("approve") is None


def test_an_allowed_person_decides_once_and_later_clicks_change_nothing(store: Store) -> None:
    people = _people()
    request_id = _request(store, people)
    first = _click(store, people, request_id, user="<@576377900236931079>", now=NOW + 60)
    assert first.kind == "decided"
    assert first.approval is not None
    assert (first.approval.status, first.approval.decided_by) == ("approved", "ada")
    assert first.approval.decided_at == NOW + 60
    replayed = _click(store, people, request_id, user=ADA, now=NOW + 61)
    other = _click(store, people, request_id, user=GRACE, now=NOW + 62, choice="reject")
    assert replayed.kind == other.kind == "already"
    assert "already approved by Ada Lovelace" in other.message
    row = stored.get_approval(store, request_id)
    assert row is not None
    assert (row.status, row.decided_by, row.decided_at) == ("approved", "ada", NOW + 60)


def test_anyone_else_is_told_they_may_not_and_nothing_changes(store: Store) -> None:
    people = _people()
    request_id = _request(store, people)
    for user in ("576377900236931081", "999"):  # a client, a stranger
        outcome = decide_click(
            store, people, request_id=request_id, choice="approve", user_id=user, now=NOW
        )
        assert outcome.kind == "not_allowed"
        assert "Ada Lovelace, Grace Hopper may" in outcome.message
    row = stored.get_approval(store, request_id)
    assert row is not None
    assert row.status == "pending"


def test_a_request_past_its_deadline_expires_once(store: Store) -> None:
    people = _people()
    request_id = _request(store, people, expires_at=NOW + 3600)
    assert stored.expire_due(store, now=NOW + 10) == []
    assert [a.id for a in stored.reminders_due(store, now=NOW + 1800, every_s=900)] == [request_id]
    stored.mark_reminded(store, request_id, now=NOW + 1800)
    assert stored.reminders_due(store, now=NOW + 2000, every_s=900) == []
    late = _click(store, people, request_id, user=ADA, now=NOW + 3601)
    assert late.kind == "expired"
    assert stored.expire_due(store, now=NOW + 4000) == []


def test_a_decision_writes_back_edits_the_request_and_tells_the_requester(store: Store) -> None:
    people = _people()
    request_id = _request(store, people)
    decided = _click(store, people, request_id, user=GRACE, now=NOW, choice="reject")
    assert decided.approval is not None
    notion, edit, *notify = decision_actions(decided.approval, people)
    assert (notion.connector, notion.operation) == ("notion", "update")
    assert notion.params["page"] == PAGE
    assert notion.params["properties"] == {"Status": "Changes requested"}
    assert edit.params["edit"] == {"message_id": "1573654206873600005/77"}
    assert edit.params["content"] == "“Write launch post” rejected by Grace Hopper."
    assert all(b["disabled"] for b in edit.params["buttons"])
    assert notify == []  # the requester (carl) has no Slack id: nobody to tell there


def test_two_simultaneous_clicks_on_postgresql_decide_once(postgres_url: str) -> None:
    people = _people()
    pg = open_store(postgres_url)
    try:
        request_id = _request(pg, people)
        outcomes: list[str] = []
        barrier = threading.Barrier(2)

        def click(user: str) -> None:
            barrier.wait()
            outcomes.append(
                decide_click(
                    pg, people, request_id=request_id, choice="approve", user_id=user, now=NOW
                ).kind
            )

        threads = [threading.Thread(target=click, args=(u,)) for u in (ADA, GRACE)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["already", "decided"]
    finally:
        pg.close()


def test_a_sweep_expires_overdue_requests_and_reminds_deciders_once_a_period(
    store: Store,
) -> None:
    people = _people()
    overdue = _request(store, people, expires_at=NOW + 60)
    view = _sweep(store, people, tick="tick", now=NOW + 120)
    assert view["expired"] == ["Write launch post"]
    assert view["discord_edits"][0]["content"] == (
        "“Write launch post” expired (no decision in time)."
    )
    expired = stored.get_approval(store, overdue)
    assert expired is not None
    assert expired.status == "expired"

    pending = approval_id("ev-2", "review", 0)
    stored.create_approval(
        store,
        approval_id=pending,
        rule_id="review",
        event_id="ev-2",
        title="Fix pricing",
        deciders=["ada", "grace"],
        request={},
        requester=None,
        now=NOW,
        expires_at=None,
    )
    day = 24 * 3600.0
    first = _sweep(store, people, tick="t2", now=NOW + day + 1)
    again = _sweep(store, people, tick="t3", now=NOW + day + 600)
    assert [n["user"] for n in first["discord_notes"]] == [ADA, GRACE]
    assert again["discord_notes"] == []


def test_the_click_that_decided_decides_again_when_processed_again(store: Store) -> None:
    # given a click event that decided the request, and whose worker died before the
    # decision's deliveries were stored
    people = _people()
    request_id = _request(store, people)
    first = _click(store, people, request_id, user=ADA, now=NOW + 60, event_id="click-1")
    # when the same event is processed again (after its lease), and another click comes
    again = _click(store, people, request_id, user=ADA, now=NOW + 120, event_id="click-1")
    double = _click(store, people, request_id, user=ADA, now=NOW + 121, event_id="click-2")
    # then the same event decides again (its write-back gets planned), the other does not
    assert (first.kind, again.kind, double.kind) == ("decided", "decided", "already")
    row = stored.get_approval(store, request_id)
    assert row is not None
    assert (row.status, row.decided_at, row.decided_event) == ("approved", NOW + 60, "click-1")
