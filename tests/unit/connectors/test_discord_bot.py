"""The Discord bot: DMs, any channel, buttons, edits and route buckets, at the transport."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from connectors.base import DeliveryContext, Destination, SendResult
from connectors.discord import DiscordConnector
from hub.secrets import Secret
from tests.connector_support import delivery_context, rendered_action, send_in_order
from tests.support import fixture_path

BOT_TOKEN = "bot-token-not-real"
DEFAULT_CHANNEL = "1213445701632131072"
DM_CHANNEL = "1573654206873600005"
ADA = "576377900236931079"


def _fixture(name: str) -> Any:
    return json.loads(fixture_path("discord", name).read_text())


def _destination(**options: Any) -> Destination:
    return Destination(
        name="team-bot",
        connector="discord",
        options={
            "bot_token": Secret(BOT_TOKEN, origin="env:DISCORD_BOT_TOKEN"),
            "channel_id": DEFAULT_CHANNEL,
            "channels": {"standup": "1313000000000000001"},
            **options,
        },
    )


def _context(destination: Destination) -> DeliveryContext:
    return delivery_context(destination, now=datetime(2026, 11, 21, 10, 0, tzinfo=UTC), rule_id="r")


class FakeBotApi:
    """Discord's REST API for a bot, as a MockTransport handler; `script` answers first."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.script: list[httpx.Response] = []
        self._next = 1573660000000000000

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert request.headers["authorization"] == f"Bot {BOT_TOKEN}"
        if self.script:
            return self.script.pop(0)
        if request.url.path == "/api/v10/users/@me/channels":
            return httpx.Response(200, json=_fixture("bot.create-dm.response.json"))
        channel = request.url.path.split("/")[4]
        self._next += 1
        message = {
            **_fixture("bot.create-message.response.json"),
            **json.loads(request.content),
            "channel_id": channel,
            "id": str(self._next),
        }
        return httpx.Response(200, json=message)

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) for r in self.requests]


def _run(
    api: FakeBotApi,
    sends: list[dict[str, Any]],
    destination: Destination | None = None,
) -> list[SendResult]:
    ctx = _context(destination or _destination())
    actions = [
        rendered_action("discord", "team-bot", params, destination_param="channel")
        for params in sends
    ]
    return send_in_order(
        DiscordConnector, api, [(action, ctx) for action in actions], base_dir=Path(".")
    )


def _route_429() -> httpx.Response:
    headers = {k: v for k, v in _fixture("bot.429.route.headers.json").items() if k[0] != "_"}
    return httpx.Response(429, json=_fixture("bot.429.route.json"), headers=headers)


def _global_429() -> httpx.Response:
    headers = {k: v for k, v in _fixture("global.429.headers.json").items() if k[0] != "_"}
    return httpx.Response(429, json=_fixture("global.429.json"), headers=headers)


def test_a_dm_opens_the_channel_once_and_posts_into_it() -> None:
    api = FakeBotApi()
    first, second = _run(api, [{"user": ADA, "content": "one"}, {"user": ADA, "content": "two"}])
    paths = [(r.method, r.url.path) for r in api.requests]
    assert paths == [
        ("POST", "/api/v10/users/@me/channels"),
        ("POST", f"/api/v10/channels/{DM_CHANNEL}/messages"),
        ("POST", f"/api/v10/channels/{DM_CHANNEL}/messages"),
    ]
    assert api.bodies()[0] == _fixture("bot.create-dm.request.json")
    assert first.outcome == "ok"
    assert first.ref is not None
    assert first.ref.startswith(f"{DM_CHANNEL}/")  # the edit of a DM needs its channel
    assert second.outcome == "ok"


def test_buttons_become_the_documented_action_row() -> None:
    api = FakeBotApi()
    [result] = _run(
        api,
        [
            {
                "content": "**Write launch post** is ready for review. Approve it?",
                "buttons": [
                    {"label": "Approve", "custom_id": "approve", "style": "success"},
                    {"label": "Reject", "custom_id": "reject", "style": "danger"},
                ],
            }
        ],
    )
    assert result.outcome == "ok"
    assert result.ref is not None
    assert "/" not in result.ref  # the destination's own channel keeps plain message ids
    assert api.bodies() == [_fixture("bot.create-message.components.request.json")]


def test_edit_patches_the_message_a_ref_names_with_disabled_buttons() -> None:
    api = FakeBotApi()
    expected = _fixture("bot.edit-message.request.json")
    buttons = [
        {"label": "Approve", "custom_id": "approve", "style": "success", "disabled": "true"},
        {"label": "Reject", "custom_id": "reject", "style": "danger", "disabled": True},
    ]
    [result] = _run(
        api,
        [
            {
                "edit": {"message_id": f"{DM_CHANNEL}/1573660000000000001"},
                "content": expected["content"],
                "buttons": buttons,
            }
        ],
    )
    [request] = api.requests
    assert (request.method, request.url.path) == (
        "PATCH",
        f"/api/v10/channels/{DM_CHANNEL}/messages/1573660000000000001",
    )
    body = api.bodies()[0]
    assert body.pop("allowed_mentions") == {"parse": []}
    assert body == expected
    assert result.outcome == "ok"


def test_any_channel_by_name_or_id_and_a_wrong_name_lists_the_names() -> None:
    api = FakeBotApi()
    by_name, by_id, wrong = _run(
        api,
        [
            {"channel_id": "standup", "content": "a"},
            {"channel_id": "1313000000000000002", "content": "b"},
            {"channel_id": "stand-up", "content": "c"},
        ],
    )
    assert [r.url.path.split("/")[4] for r in api.requests] == [
        "1313000000000000001",
        "1313000000000000002",
    ]
    assert by_name.outcome == by_id.outcome == "ok"
    assert wrong.outcome == "fail"
    assert "names: standup" in wrong.reason


def test_an_empty_route_bucket_waits_without_a_request_while_other_routes_go_on() -> None:
    api = FakeBotApi()
    api.script.append(_route_429())
    limited, held, other = _run(
        api,
        [
            {"content": "a"},
            {"content": "b"},
            {"channel_id": "standup", "content": "c"},
        ],
    )
    assert limited.outcome == "retry"
    assert limited.after == 0.731
    assert held.outcome == "retry"
    assert held.after is not None
    assert 0 < held.after <= 0.731
    assert other.outcome == "ok"
    assert len(api.requests) == 2  # the held send made no request


def test_the_global_limit_holds_every_route() -> None:
    api = FakeBotApi()
    api.script.append(_global_429())
    limited, held = _run(api, [{"content": "a"}, {"user": ADA, "content": "b"}])
    assert limited.outcome == "retry"
    assert limited.after == 1.337
    assert held.outcome == "retry"
    assert len(api.requests) == 1


def test_a_webhook_destination_cannot_dm() -> None:
    hook = Destination(
        name="team-bot",
        connector="discord",
        options={"webhook_url": Secret("https://discord.com/api/webhooks/1/t", origin="env:X")},
    )
    api = FakeBotApi()
    [result] = _run(api, [{"user": ADA, "content": "a"}], destination=hook)
    assert result.outcome == "fail"
    assert "needs a bot destination" in result.reason
    assert api.requests == []


def test_discord_connector_declares_how_a_person_is_addressed() -> None:
    assert DiscordConnector.person_address == ("user", "discord")
