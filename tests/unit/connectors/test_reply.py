"""ReplyConnector: the rule's answer to a Discord or Slack chat command, faked with respx."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from connectors.base import ConnectorEnv, SendResult
from connectors.reply import ReplyConnector
from tests.connector_support import delivery_context, rendered_action
from tests.support import fixture_path

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
TOKEN = "aW50ZXJhY3Rpb246MTMxNzk4NTQ2NjkzOTAwNzEwNDp0b2tlbi1ub3QtcmVhbA"
DISCORD_URL = f"https://discord.com/api/v10/webhooks/1234567890/{TOKEN}"
SLACK_URL = "https://hooks.slack.com/commands/T0001/1234567890/zKp0NotRealSecret"


def _send(params: dict[str, Any], tmp_path: Path) -> SendResult:
    ctx = delivery_context(None, now=NOW, rule_id="tasks-mine", delivery_id="d1", event_id="e1")
    action = rendered_action("reply", None, params)

    async def run() -> SendResult:
        async with httpx.AsyncClient() as http:
            return await ReplyConnector(ConnectorEnv(http=http, base_dir=tmp_path)).send(
                action, ctx
            )

    return asyncio.run(run())


def _discord(**extra: Any) -> dict[str, Any]:
    later = (NOW + timedelta(minutes=10)).isoformat().replace("+00:00", "Z")
    return {"url": DISCORD_URL, "kind": "discord.interaction", "expires_at": later, **extra}


def _slack(**extra: Any) -> dict[str, Any]:
    return {"url": SLACK_URL, "kind": "slack.response_url", **extra}


@respx.mock
def test_discord_edits_the_deferred_message_without_pinging_anyone(tmp_path: Path) -> None:
    route = respx.patch(f"{DISCORD_URL}/messages/@original").respond(200, json={"id": "1"})
    result = _send(_discord(text="@everyone you have 3 open tasks"), tmp_path)
    assert result.outcome == "ok"
    body = json.loads(route.calls.last.request.content)
    assert body == {
        "content": "@everyone you have 3 open tasks",
        "allowed_mentions": {"parse": []},
    }


@respx.mock
def test_slack_posts_to_the_response_url_ephemeral_by_default(tmp_path: Path) -> None:
    route = respx.post(SLACK_URL).respond(200, text="ok")
    assert _send(_slack(text="3 open tasks"), tmp_path).outcome == "ok"
    assert json.loads(route.calls.last.request.content) == {
        "text": "3 open tasks",
        "response_type": "ephemeral",
    }
    _send(_slack(text="shared", visibility="in_channel"), tmp_path)
    assert json.loads(route.calls.last.request.content)["response_type"] == "in_channel"


@respx.mock
def test_a_long_discord_answer_is_cut_at_2000_characters(tmp_path: Path) -> None:
    route = respx.patch(f"{DISCORD_URL}/messages/@original").respond(200, json={})
    _send(_discord(text="x" * 2500), tmp_path)
    content = json.loads(route.calls.last.request.content)["content"]
    assert len(content) == 2000
    assert content.endswith("…")


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({**_discord(text="hi"), "url": "https://evil.example/api/webhooks/1/x"}, "must be"),
        ({**_discord(text="hi"), "url": "http://discord.com/api/webhooks/1/x"}, "must be"),
        ({**_slack(text="hi"), "url": DISCORD_URL}, "must be"),  # kind and host disagree
        ({**_slack(text="hi"), "kind": "email"}, "is not one of"),
        ({**_discord(text="hi"), "expires_at": "2026-11-21T09:59:59Z"}, "expired"),
    ],
)
@respx.mock(assert_all_called=False)
def test_refused_before_any_request(params: dict[str, Any], reason: str, tmp_path: Path) -> None:
    result = _send(params, tmp_path)
    assert result.outcome == "fail"
    assert reason in result.reason
    assert not respx.calls


@respx.mock
def test_discord_rate_limit_retries_after_its_retry_after(tmp_path: Path) -> None:
    body = json.loads(fixture_path("discord", "webhook.execute.429.json").read_text())
    respx.patch(f"{DISCORD_URL}/messages/@original").respond(429, json=body)
    result = _send(_discord(text="hi"), tmp_path)
    assert result.outcome == "retry"
    assert result.after == pytest.approx(float(body["retry_after"]))


@respx.mock
def test_an_expired_token_fails_without_leaking_it(tmp_path: Path) -> None:
    respx.patch(f"{DISCORD_URL}/messages/@original").respond(
        404, json={"message": "Unknown Webhook", "code": 10015}
    )
    respx.post(SLACK_URL).respond(404, text="expired_url")
    for params in (_discord(text="hi"), _slack(text="hi")):
        result = _send(params, tmp_path)
        assert result.outcome == "fail"
        assert TOKEN not in result.reason
        assert "zKp0NotRealSecret" not in result.reason
        assert "no longer valid" in result.reason


@respx.mock
def test_server_errors_and_timeouts_retry(tmp_path: Path) -> None:
    respx.post(SLACK_URL).mock(side_effect=[httpx.Response(503), httpx.ReadTimeout("slow")])
    assert _send(_slack(text="hi"), tmp_path).outcome == "retry"
    assert _send(_slack(text="hi"), tmp_path).outcome == "retry"
