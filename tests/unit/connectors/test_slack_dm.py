"""Slack DMs (conversations.open once per person), any channel, buttons and edits."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.base import ConnectorEnv, Destination, SendResult
from connectors.slack import SlackConnector
from hub.secrets import Secret
from tests.connector_support import delivery_context, rendered_action
from tests.fakes.slack import BOT_TOKEN, FakeSlack, fixture_json
from tests.servers import serve_in_thread

ADA = "U05LB8ADA7Q"
ADA_DM = "D06V2KDMA7Q"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeSlack, str]]:
    fake = FakeSlack()
    with serve_in_thread(fake.app()) as url:
        yield fake, url
        fake.reset()


@pytest.fixture
def slack(served: tuple[FakeSlack, str]) -> tuple[FakeSlack, str]:
    served[0].reset()
    return served


def _send(url: str, sends: list[dict[str, Any]], **options: Any) -> list[SendResult]:
    dest = Destination(
        name="team-bot",
        connector="slack",
        options={
            "bot_token": Secret(BOT_TOKEN, origin="env:SLACK_BOT_TOKEN"),
            "base_url": f"{url}/api/",
            "timeout_s": 2,
            **options,
        },
    )
    ctx = delivery_context(dest, now=datetime(2026, 11, 21, 10, 0, tzinfo=UTC), rule_id="r")

    async def run() -> list[SendResult]:
        async with httpx.AsyncClient() as http:
            connector = SlackConnector(ConnectorEnv(http=http, base_dir=Path()))
            out = []
            for params in sends:
                action = rendered_action("slack", "team-bot", params, destination_param="channel")
                out.append(await connector.send(action, ctx))
            return out

    return asyncio.run(run())


def test_a_dm_opens_the_conversation_once_and_posts_the_documented_buttons(
    slack: tuple[FakeSlack, str],
) -> None:
    fake, url = slack
    expected = fixture_json("chat.postMessage.blocks.request.json")
    value = "153104cd-477e-809d-8dc4-ff2d96ae3090"
    first, second = _send(
        url,
        [
            {
                "user": ADA,
                "text": expected["text"],
                "blocks": expected["blocks"][:1],
                "buttons": [
                    {
                        "label": "Approve",
                        "action_id": "approve",
                        "style": "primary",
                        "value": value,
                    },
                    {"label": "Reject", "action_id": "reject", "style": "danger", "value": value},
                ],
                "buttons_block_id": "approval_153104cd",
            },
            {"user": ADA, "text": "again"},
        ],
    )
    paths = [r.path for r in fake.received]
    assert paths == ["/api/conversations.open", "/api/chat.postMessage", "/api/chat.postMessage"]
    assert fake.received[0].body == fixture_json("conversations.open.request.json")
    assert fake.received[1].body == expected
    assert first.outcome == "ok"
    assert first.ref is not None
    assert first.ref.startswith(f"{ADA_DM}:")
    assert second.outcome == "ok"


def test_an_unknown_user_fails_with_slacks_reason_and_posts_nothing(
    slack: tuple[FakeSlack, str],
) -> None:
    fake, url = slack
    [result] = _send(url, [{"user": "U0NOBODY00", "text": "hi"}])
    assert result.outcome == "fail"
    assert "cannot open a DM with Slack user U0NOBODY00" in result.reason
    assert "user_not_found" in result.reason
    assert [r.path for r in fake.received] == ["/api/conversations.open"]


def test_edit_updates_the_message_a_ref_names(slack: tuple[FakeSlack, str]) -> None:
    fake, url = slack
    [posted] = _send(url, [{"user": ADA, "text": "Approve?", "buttons": [{"label": "Approve"}]}])
    assert posted.ref is not None
    [edited] = _send(url, [{"edit": posted.ref, "text": "Approved by Ada"}])
    assert edited.outcome == "ok"
    update = fake.received[-1]
    assert update.path == "/api/chat.update"
    assert update.body["channel"] == ADA_DM
    assert update.body["text"] == "Approved by Ada"
    assert update.body["blocks"] == []  # the buttons are gone


def test_a_destination_without_a_channel_says_what_to_give(slack: tuple[FakeSlack, str]) -> None:
    fake, url = slack
    [result] = _send(url, [{"text": "hi"}])
    assert result.outcome == "fail"
    assert "give the action channel_id: or user:" in result.reason
    assert fake.received == []


def test_slack_connector_declares_how_a_person_is_addressed() -> None:
    assert SlackConnector.person_address == ("user", "slack")
