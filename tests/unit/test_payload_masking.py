"""The admin API and dashboard show a stored webhook's body with its credentials masked:
Discord's interaction token, Slack's response_url(s) and verification token."""

from __future__ import annotations

import json
import urllib.parse

from hub.api.views import payload_of
from hub.secrets import MASK
from hub.store import InboundRow
from tests.support import fixture_path

FORM = {"content-type": "application/x-www-form-urlencoded"}


def _row(body: bytes, headers: dict[str, str]) -> InboundRow:
    return InboundRow(
        id="e1",
        source="slack",
        provider_delivery_id="d1",
        status="processed",
        received_at=0.0,
        headers=headers,
        body=body,
        normalized=None,
        error=None,
        attempts=1,
    )


def test_a_slash_command_form_keeps_its_fields_but_not_its_credentials() -> None:
    body = fixture_path("slack", "slash-command.body.txt").read_bytes()
    shown = payload_of(_row(body, FORM))
    assert isinstance(shown, str)
    fields = dict(urllib.parse.parse_qsl(shown))
    assert fields["response_url"] == MASK
    assert fields["token"] == MASK
    assert fields["command"] == "/tasks"
    assert fields["text"] == 'list status:"In progress" @grace'
    assert "Zx9FixtureResponseUrlToken01" not in shown
    assert "fixtureVerificationTokenNotReal0" not in shown


def test_an_interactive_payload_is_masked_inside_its_json_field() -> None:
    body = fixture_path("slack", "block_actions.body.txt").read_bytes()
    original = json.loads(dict(urllib.parse.parse_qsl(body.decode()))["payload"])
    shown = payload_of(_row(body, FORM))
    assert isinstance(shown, str)
    payload = json.loads(dict(urllib.parse.parse_qsl(shown))["payload"])
    assert payload["token"] == MASK
    assert payload["response_url"] == MASK
    assert payload["type"] == original["type"] == "block_actions"
    assert original["response_url"] not in shown


def test_a_discord_interaction_token_is_masked_in_the_json_body() -> None:
    body = fixture_path("discord", "interaction.application_command.tasks.json").read_bytes()
    original = json.loads(body)
    shown = payload_of(_row(body, {"content-type": "application/json"}))
    assert shown["token"] == MASK
    assert shown["data"] == original["data"]
    assert original["token"] not in json.dumps(shown)
