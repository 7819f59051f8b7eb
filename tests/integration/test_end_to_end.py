"""Webhook in → rule → worker → a real (local) fake Discord, in embedded and Redis modes."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from hub.app import create_app
from hub.plugins import load_plugins
from hub.runtime import build_runtime
from tests.fakes.discord import FakeDiscord
from tests.support import (
    REDIS_URL_FOR_TESTS,
    all_delivered,
    deliver_five_issues_once,
    make_settings,
    post_issue,
    wait_until,
)


def test_embedded_mode_delivers_the_rendered_embed_exactly_once(
    tmp_path: Path, discord: tuple[FakeDiscord, str]
) -> None:
    fake, url = discord
    runtime = build_runtime(make_settings(tmp_path, discord_url=url), load_plugins())
    with TestClient(create_app(runtime, run_worker=True)) as client:
        event_id = post_issue(client, "e2e-1")
        # The provider's retry of the same delivery: acknowledged, not processed again.
        assert post_issue(client, "e2e-1", expect=200) == event_id
        wait_until(lambda: all_delivered(runtime, event_id, 2), 10, "both actions delivered")
    runtime.close()

    assert len(fake.received) == 1
    sent = fake.received[0]
    assert sent.query == {"wait": "true"}
    assert sent.body["content"] == f"opened {event_id}"
    assert sent.body["embeds"] == [
        {
            "title": "#1 Spelling error in the README file",
            "url": "https://github.com/Codertocat/Hello-World/issues/1",
            "description": "Opened by Codertocat",
        }
    ]
    assert sent.body["allowed_mentions"] == {"parse": []}
    discord_row = next(
        r for r in runtime.store.list_deliveries(inbound_id=event_id) if r.connector == "discord"
    )
    assert discord_row.ref is not None  # the message id from ?wait=true is kept
    inbox = (tmp_path / "inbox.log").read_text().splitlines()
    assert len(inbox) == 1
    assert event_id in inbox[0]


def test_a_429_from_discord_is_retried_no_earlier_than_its_retry_after(
    tmp_path: Path, discord: tuple[FakeDiscord, str]
) -> None:
    fake, url = discord
    fake.rate_limit_next(0.4)
    runtime = build_runtime(make_settings(tmp_path, discord_url=url), load_plugins())
    with TestClient(create_app(runtime, run_worker=True)) as client:
        event_id = post_issue(client, "e2e-429")
        wait_until(lambda: all_delivered(runtime, event_id, 2), 10, "delivered after the 429")
    runtime.close()

    assert [r.status for r in fake.received] == [429, 200]
    waited = fake.received[1].at - fake.received[0].at
    assert waited >= 0.4, f"retried after {waited:.3f}s, before Discord's retry_after of 0.4s"
    row = next(
        r for r in runtime.store.list_deliveries(inbound_id=event_id) if r.connector == "discord"
    )
    attempts = runtime.store.list_attempts(row.id)
    assert [(a.outcome, a.status_code) for a in attempts] == [("retry", 429), ("ok", 200)]


def test_destination_without_its_optional_secret_records_skipped_not_sent(
    tmp_path: Path, discord: tuple[FakeDiscord, str]
) -> None:
    fake, _ = discord
    runtime = build_runtime(make_settings(tmp_path, discord_url=None), load_plugins())
    with TestClient(create_app(runtime, run_worker=True)) as client:
        event_id = post_issue(client, "skip-1")
        wait_until(
            lambda: any(
                r.status == "delivered" for r in runtime.store.list_deliveries(inbound_id=event_id)
            ),
            10,
            "the log action delivered",
        )
    runtime.close()
    statuses = {
        r.connector: (r.status, r.last_error)
        for r in runtime.store.list_deliveries(inbound_id=event_id)
    }
    assert statuses["discord"][0] == "skipped"
    assert "TEST_DISCORD_WEBHOOK_URL" in (statuses["discord"][1] or "")
    assert fake.received == []


@pytest.mark.redis
def test_redis_mode_ingress_and_separate_worker_deliver_exactly_once(
    tmp_path: Path, discord: tuple[FakeDiscord, str], redis_namespace: str
) -> None:
    fake, url = discord
    settings = make_settings(
        tmp_path, discord_url=url, broker_url=REDIS_URL_FOR_TESTS, namespace=redis_namespace
    )
    ids = deliver_five_issues_once(settings, "redis", timeout_s=15)
    contents = sorted(r.body["content"] for r in fake.received)
    assert contents == sorted(f"opened {i}" for i in ids)
