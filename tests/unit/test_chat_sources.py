"""Discord interactions and Slack commands: signatures, protocol answers, normalized events."""

from __future__ import annotations

import json
import re
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from nacl.signing import SigningKey

from connectors.base import Destination
from hub.clock import FakeClock
from hub.errors import MalformedPayload, RequestRejected, SignatureError
from hub.events import Event, event_id_for
from hub.plugins import load_plugins
from hub.rules import load_ruleset, match_rules
from hub.rules.templates import TemplateEngine
from hub.secrets import Secret
from hub.sources.base import HookRequest, NormalizeContext, RawEvent, Source, Verdict
from hub.sources.discord_interactions import DiscordInteractionsSource, flatten_options
from hub.sources.slack_commands import SlackCommandsSource, sign, split_args
from tests.support import fixture_path

REPO = Path(__file__).resolve().parents[2]
VALIDATOR = Draft202012Validator(
    json.loads((REPO / "schemas" / "event.schema.json").read_text(encoding="utf-8")),
    format_checker=FormatChecker(),
)


def _schema_errors(event: Event) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in VALIDATOR.iter_errors(event.to_dict())
    ]


def _normalize(source: Source, body: bytes, headers: dict[str, str], delivery: str) -> list[Event]:
    raw = RawEvent(
        id="raw-1",
        source=source.name,
        provider_delivery_id=delivery,
        headers=headers,
        body=body,
        received_at=datetime(2030, 1, 1, tzinfo=UTC),  # must not leak into the event
    )
    return source.normalize(raw, NormalizeContext(clock=FakeClock()))


def _rejected(call: Any) -> RequestRejected:
    with pytest.raises(RequestRejected) as info:
        call()
    return info.value


# --- Discord ------------------------------------------------------------------------------

SIGNING_KEY = SigningKey.generate()
PUBLIC_KEY = SIGNING_KEY.verify_key.encode().hex()
DISCORD_SECRET = Secret(PUBLIC_KEY, origin="test")
COMMAND = fixture_path("discord", "interaction.application_command.tasks.json").read_bytes()
PING = fixture_path("discord", "interaction.ping.json").read_bytes()
COMMAND_ID = "1573639235221717004"
TOKEN = json.loads(COMMAND)["token"]
#: The fixture interactions were created at 2026-11-21T10:00:30Z; FakeClock starts at 10:00.
NOW_TS = int(FakeClock().now().timestamp())


def _discord_headers(
    body: bytes, *, timestamp: int = NOW_TS, key: SigningKey = SIGNING_KEY
) -> dict[str, str]:
    signed = key.sign(str(timestamp).encode() + body).signature.hex()
    return {
        "x-signature-ed25519": signed,
        "x-signature-timestamp": str(timestamp),
        "content-type": "application/json",
    }


def _discord_verify(
    body: bytes,
    headers: dict[str, str] | None = None,
    *,
    secret: Secret | None = DISCORD_SECRET,
    source: DiscordInteractionsSource | None = None,
    clock: FakeClock | None = None,
) -> Verdict:
    clock = clock or FakeClock()
    request = HookRequest(
        source="discord",
        headers=_discord_headers(body) if headers is None else headers,
        body=body,
        received_at=clock.now(),
    )
    return (source or DiscordInteractionsSource()).verify(request, secret, clock)


def _discord_event(body: bytes, source: DiscordInteractionsSource | None = None) -> Event:
    src = source or DiscordInteractionsSource()
    headers = _discord_headers(body)
    verdict = _discord_verify(body, headers, source=src)
    assert verdict.store
    (event,) = _normalize(src, body, headers, verdict.provider_delivery_id)
    assert _schema_errors(event) == []
    return event


def _interaction(**overrides: Any) -> bytes:
    payload = json.loads(COMMAND)
    payload.update(overrides)
    return json.dumps(payload).encode()


def test_discord_ping_is_answered_pong_and_not_stored() -> None:
    verdict = _discord_verify(PING)

    assert verdict.store is False
    assert (verdict.status, dict(verdict.reply or {})) == (200, {"type": 1})
    assert json.loads(fixture_path("discord", "interaction.response.pong.json").read_bytes()) == {
        "type": 1
    }


def test_discord_command_is_stored_under_its_interaction_id_and_deferred() -> None:
    verdict = _discord_verify(COMMAND)

    assert verdict.store is True
    assert verdict.provider_delivery_id == COMMAND_ID
    assert (verdict.status, dict(verdict.reply or {})) == (200, {"type": 5})


def test_discord_ephemeral_option_defers_with_the_ephemeral_flag() -> None:
    source = DiscordInteractionsSource.from_options({"ephemeral": True})

    verdict = _discord_verify(COMMAND, source=source)

    assert dict(verdict.reply or {}) == {"type": 5, "data": {"flags": 64}}


def test_discord_signature_from_another_key_is_401() -> None:
    headers = _discord_headers(COMMAND, key=SigningKey.generate())

    error = _rejected(lambda: _discord_verify(COMMAND, headers))

    assert isinstance(error, SignatureError)
    assert (error.status, error.code) == (401, "bad_signature")


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda b, h: (b.replace(b'"in_progress"', b'"done"'), h), id="body"),
        pytest.param(
            lambda b, h: (b, {**h, "x-signature-timestamp": str(NOW_TS + 1)}), id="timestamp"
        ),
        pytest.param(lambda b, h: (b, {**h, "x-signature-ed25519": "zz" * 64}), id="not-hex"),
        pytest.param(lambda b, h: (b, {**h, "x-signature-ed25519": "ab" * 10}), id="too-short"),
        pytest.param(lambda b, h: (b, {**h, "x-signature-ed25519": "é" * 128}), id="non-ascii"),
    ],
)
def test_discord_every_bad_signature_fails_the_same_way(tamper: Any) -> None:
    body, headers = tamper(COMMAND, _discord_headers(COMMAND))
    reference = _rejected(
        lambda: _discord_verify(COMMAND, _discord_headers(COMMAND, key=SigningKey.generate()))
    )

    error = _rejected(lambda: _discord_verify(body, headers))

    assert (error.status, error.code, error.message) == (401, "bad_signature", reference.message)


@pytest.mark.parametrize("missing", ["x-signature-ed25519", "x-signature-timestamp"])
def test_discord_missing_signature_header_is_401(missing: str) -> None:
    headers = _discord_headers(COMMAND)
    del headers[missing]

    error = _rejected(lambda: _discord_verify(COMMAND, headers))

    assert error.status == 401
    assert missing.replace("x-signature-", "") in error.message.lower()


@pytest.mark.parametrize(("offset_s", "accepted"), [(299, True), (301, False), (-301, False)])
def test_discord_timestamp_outside_five_minutes_is_401(offset_s: int, accepted: bool) -> None:
    # Given a request signed at NOW_TS, and our clock offset from it
    clock = FakeClock()
    clock.advance(offset_s)

    if accepted:
        assert _discord_verify(COMMAND, clock=clock).store
    else:
        error = _rejected(lambda: _discord_verify(COMMAND, clock=clock))
        assert (error.status, error.code) == (401, "stale_request")


def test_discord_without_a_public_key_refuses_everything() -> None:
    error = _rejected(lambda: _discord_verify(PING, secret=None))

    assert error.status == 401
    assert "SWITCHBOARD_SECRET_DISCORD" in error.message


def test_discord_public_key_can_come_from_the_settings() -> None:
    source = DiscordInteractionsSource.from_options({"public_key": PUBLIC_KEY})

    assert _discord_verify(PING, secret=None, source=source).reply == {"type": 1}


def test_discord_malformed_public_key_is_named() -> None:
    error = _rejected(lambda: _discord_verify(PING, secret=Secret("not-hex", origin="test")))

    assert (error.status, error.code) == (401, "bad_public_key")


def test_discord_fixture_command_normalizes_to_command_tasks() -> None:
    event = _discord_event(COMMAND)
    fields = event.fields

    assert event.type == "command.tasks"
    assert event.id == event_id_for("discord", COMMAND_ID)
    assert event.source == "discord/1118449749196931072"
    assert event.time == datetime(2026, 11, 21, 10, 0, 30, 480000, tzinfo=UTC)
    assert event.entity.title == "/tasks status:in_progress"
    assert (event.actor.id, event.actor.name) == ("576377900236931079", "Ada")
    assert fields["command"] == "tasks"
    assert fields["subcommand"] is None
    assert fields["options"] == {"status": "in_progress"}
    assert fields["args"] == ["status:in_progress"]
    assert fields["user"] == {
        "id": "576377900236931079",
        "username": "ada.example",
        "global_name": "Ada",
    }
    assert fields["channel"] == {"id": "1118451007488131075", "name": "tasks"}
    assert fields["guild"] == {"id": "1118449749196931072"}


def test_discord_follow_up_credentials_are_marked_secret_and_expire_in_15_minutes() -> None:
    event = _discord_event(COMMAND)

    assert event.fields["followup"] == {
        "secret": True,
        "kind": "discord.interaction",
        "application_id": "1213445701632131072",
        "interaction_token": TOKEN,
        "url": f"https://discord.com/api/v10/webhooks/1213445701632131072/{TOKEN}",
        "expires_at": "2026-11-21T10:15:30.480000Z",
    }
    # The token appears nowhere else in the event (raw included).
    assert json.dumps(event.to_dict()).count(TOKEN) == 2


def test_discord_event_is_the_same_on_every_replay() -> None:
    first, second = _discord_event(COMMAND), _discord_event(COMMAND)

    assert first.to_dict() == second.to_dict()


def test_discord_subcommand_groups_flatten_into_a_path_and_option_values() -> None:
    options = [
        {
            "name": "list",
            "type": 2,
            "options": [
                {
                    "name": "mine",
                    "type": 1,
                    "options": [
                        {"name": "status", "type": 3, "value": "in_progress"},
                        {"name": "limit", "type": 4, "value": 5},
                    ],
                }
            ],
        }
    ]
    assert flatten_options(options) == (["list", "mine"], {"status": "in_progress", "limit": 5})

    body = _interaction(data={"id": "1", "name": "tasks", "type": 1, "options": options})
    fields = _discord_event(body).fields

    assert fields["subcommand"] == "list mine"
    assert fields["args"] == ["list", "mine", "status:in_progress", "limit:5"]
    assert fields["text"] == "list mine status:in_progress limit:5"


def test_discord_button_click_becomes_an_interaction_event_and_keeps_the_message() -> None:
    data = {"custom_id": "task_mark_done", "component_type": 2}
    body = _interaction(type=3, data=data, message={"id": "1573639300000000000"})

    verdict = _discord_verify(body)
    event = _discord_event(body)

    assert dict(verdict.reply or {}) == {"type": 6}
    assert event.type == "command.interaction.task_mark_done"
    assert event.fields["interaction"] == "component"
    assert event.fields["message_id"] == "1573639300000000000"


def test_discord_select_menu_and_modal_values_are_collected() -> None:
    select = _interaction(
        type=3, data={"custom_id": "status", "component_type": 3, "values": ["done"]}
    )
    modal = _interaction(
        type=5,
        data={
            "custom_id": "new_task",
            "components": [
                {"type": 1, "components": [{"type": 4, "custom_id": "title", "value": "Ship"}]}
            ],
        },
    )

    assert _discord_event(select).fields["values"] == {"values": ["done"]}
    assert _discord_event(modal).fields["values"] == {"title": "Ship"}
    assert dict(_discord_verify(modal).reply or {}) == {"type": 5}


def test_discord_autocomplete_gets_an_empty_choice_list_and_is_not_stored() -> None:
    verdict = _discord_verify(_interaction(type=4))

    assert verdict.store is False
    assert dict(verdict.reply or {}) == {"type": 8, "data": {"choices": []}}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(_interaction(type=99), id="unknown-type"),
        pytest.param(_interaction(data={"id": "1", "type": 1}), id="no-command-name"),
        pytest.param(_interaction(id=42), id="numeric-id"),
        # Found by atheris: a 25-digit id passed `isdigit` and crashed the normalizer.
        pytest.param(_interaction(id="1213455767961731071717004"), id="id-over-64-bits"),
        pytest.param(b"[1, 2]", id="not-an-object"),
    ],
)
def test_discord_signed_but_malformed_interactions_are_400(body: bytes) -> None:
    error = _rejected(lambda: _discord_verify(body))

    assert isinstance(error, MalformedPayload)
    assert error.status == 400


# --- Slack --------------------------------------------------------------------------------

SLACK_KEY = "fixture-signing-secret-not-a-real-one"
SLACK_SECRET = Secret(SLACK_KEY, origin="test")
SLASH = fixture_path("slack", "slash-command.body.txt").read_bytes()
SLASH_HEADERS = {
    k.lower(): v
    for k, v in json.loads(fixture_path("slack", "slash-command.headers.json").read_bytes()).items()
    if not k.startswith("_")
}
BLOCK_ACTIONS = fixture_path("slack", "block_actions.body.txt").read_bytes().strip()
URL_VERIFICATION = fixture_path("slack", "url_verification.json").read_bytes()
SLACK_TS = 1763719200  # the fixture's X-Slack-Request-Timestamp: 2025-11-21T10:00:00Z
TRIGGER = "8123456789012.5180931407123.3a5f0c8e9b7d6a4c2e1f0b9a8d7c6e5f"
RESPONSE_URL = (
    "https://hooks.slack.com/commands/T05KQ7ZT9RM/8123456789012/Zx9FixtureResponseUrlToken01"
)


def _slack_clock(offset_s: float = 2) -> FakeClock:
    return FakeClock(datetime.fromtimestamp(SLACK_TS + offset_s, UTC))


def _slack_headers(
    body: bytes, *, timestamp: int = SLACK_TS, key: str = SLACK_KEY, json_body: bool = False
) -> dict[str, str]:
    return {
        "x-slack-signature": sign(key, str(timestamp), body),
        "x-slack-request-timestamp": str(timestamp),
        "content-type": "application/json" if json_body else "application/x-www-form-urlencoded",
    }


def _slack_verify(
    body: bytes,
    headers: dict[str, str] | None = None,
    *,
    secret: Secret | None = SLACK_SECRET,
    source: SlackCommandsSource | None = None,
    clock: FakeClock | None = None,
) -> Verdict:
    clock = clock or _slack_clock()
    request = HookRequest(
        source="slack",
        headers=_slack_headers(body) if headers is None else headers,
        body=body,
        received_at=clock.now(),
    )
    return (source or SlackCommandsSource()).verify(request, secret, clock)


def _slack_events(body: bytes, headers: dict[str, str] | None = None) -> list[Event]:
    headers = headers or _slack_headers(body)
    verdict = _slack_verify(body, headers)
    assert verdict.store
    events = _normalize(SlackCommandsSource(), body, headers, verdict.provider_delivery_id)
    for event in events:
        assert _schema_errors(event) == []
    return events


def _slash(text: str) -> bytes:
    form = urllib.parse.parse_qs(SLASH.decode())
    form["text"] = [text]
    return urllib.parse.urlencode({k: v[0] for k, v in form.items()}).encode()


def test_slack_fixture_signature_is_the_one_slack_computed() -> None:
    assert sign(SLACK_KEY, str(SLACK_TS), SLASH) == SLASH_HEADERS["x-slack-signature"]


def test_slack_slash_command_is_stored_and_acknowledged_ephemerally() -> None:
    verdict = _slack_verify(SLASH, SLASH_HEADERS)

    assert verdict.store is True
    assert verdict.provider_delivery_id == f"trigger-{TRIGGER}"
    assert verdict.status == 200
    assert dict(verdict.reply or {}) == {"response_type": "ephemeral", "text": "Working on it…"}


def test_slack_acknowledgement_text_comes_from_the_settings() -> None:
    source = SlackCommandsSource.from_options({"ack_text": "Looking that up…"})

    verdict = _slack_verify(SLASH, SLASH_HEADERS, source=source)

    assert (verdict.reply or {})["text"] == "Looking that up…"


def test_slack_provider_delivery_id_survives_a_re_signed_copy_of_the_same_command() -> None:
    # Given the same command signed again a minute later (a replay with a fresh timestamp)
    later = _slack_headers(SLASH, timestamp=SLACK_TS + 60)

    first = _slack_verify(SLASH, SLASH_HEADERS)
    second = _slack_verify(SLASH, later, clock=_slack_clock(61))

    assert first.provider_delivery_id == second.provider_delivery_id


def test_slack_request_without_trigger_id_uses_a_hash_of_the_signature() -> None:
    body = b"command=%2Ftasks&text=mine&team_id=T1&user_id=U1"
    headers = _slack_headers(body)

    delivery = _slack_verify(body, headers).provider_delivery_id

    assert re.fullmatch(r"sig-[0-9a-f]{32}", delivery)
    assert _slack_verify(body, headers).provider_delivery_id == delivery


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(_slack_headers(SLASH, key="another-secret"), id="wrong-secret"),
        pytest.param({**SLASH_HEADERS, "x-slack-request-timestamp": "1763719201"}, id="ts"),
        pytest.param({**SLASH_HEADERS, "x-slack-signature": "v1=" + "0" * 64}, id="scheme"),
        pytest.param({**SLASH_HEADERS, "x-slack-signature": "v0=é"}, id="non-ascii"),
    ],
)
def test_slack_bad_signature_is_401(headers: dict[str, str]) -> None:
    error = _rejected(lambda: _slack_verify(SLASH, headers))

    assert isinstance(error, SignatureError)
    assert (error.status, error.code) == (401, "bad_signature")


def test_slack_tampered_body_is_401() -> None:
    tampered = SLASH.replace(b"user_id=U05LB8ADA7Q", b"user_id=U0ADMIN0000")

    error = _rejected(lambda: _slack_verify(tampered, SLASH_HEADERS))

    assert (error.status, error.code) == (401, "bad_signature")


@pytest.mark.parametrize("missing", ["x-slack-signature", "x-slack-request-timestamp"])
def test_slack_missing_header_is_401(missing: str) -> None:
    headers = {k: v for k, v in SLASH_HEADERS.items() if k != missing}

    assert _rejected(lambda: _slack_verify(SLASH, headers)).status == 401


@pytest.mark.parametrize(("offset_s", "accepted"), [(300, True), (301, False), (-301, False)])
def test_slack_timestamp_outside_five_minutes_is_401(offset_s: int, accepted: bool) -> None:
    clock = _slack_clock(offset_s)

    if accepted:
        assert _slack_verify(SLASH, SLASH_HEADERS, clock=clock).store
    else:
        error = _rejected(lambda: _slack_verify(SLASH, SLASH_HEADERS, clock=clock))
        assert (error.status, error.code) == (401, "stale_request")


def test_slack_without_a_signing_secret_refuses_commands() -> None:
    error = _rejected(lambda: _slack_verify(SLASH, SLASH_HEADERS, secret=None))

    assert error.status == 401
    assert "SWITCHBOARD_SECRET_SLACK" in error.message


def test_slack_url_verification_echoes_the_challenge_only_when_signed() -> None:
    verdict = _slack_verify(URL_VERIFICATION, _slack_headers(URL_VERIFICATION, json_body=True))

    assert verdict.store is False
    assert (verdict.status, dict(verdict.reply or {})) == (
        200,
        {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"},
    )
    unsigned = {"content-type": "application/json"}
    assert _rejected(lambda: _slack_verify(URL_VERIFICATION, unsigned)).status == 401


def test_slack_ssl_check_is_answered_without_storing() -> None:
    verdict = _slack_verify(b"ssl_check=1&token=abc", {})

    assert (verdict.store, verdict.status) == (False, 200)


def test_slack_events_api_callbacks_are_refused_with_a_hint() -> None:
    body = json.dumps({"type": "event_callback", "event_id": "Ev1"}).encode()

    error = _rejected(lambda: _slack_verify(body, _slack_headers(body, json_body=True)))

    assert (error.status, error.code) == (400, "unsupported_request")


def test_slack_fixture_command_normalizes_to_command_tasks() -> None:
    (event,) = _slack_events(SLASH, SLASH_HEADERS)
    fields = event.fields

    assert event.type == "command.tasks"
    assert event.id == event_id_for("slack", f"trigger-{TRIGGER}")
    assert event.source == "slack/T05KQ7ZT9RM"
    assert event.time == datetime.fromtimestamp(SLACK_TS, UTC)
    assert event.entity.title == '/tasks list status:"In progress" @grace'
    assert (event.actor.id, event.actor.name) == ("U05LB8ADA7Q", "ada")
    assert fields["text"] == 'list status:"In progress" @grace'
    assert fields["args"] == ["list", "status:In progress", "@grace"]
    assert fields["options"] == {"status": "In progress"}
    assert fields["user"] == {"id": "U05LB8ADA7Q", "name": "ada"}
    assert fields["channel"] == {"id": "C06T4SK5Q2W", "name": "tasks"}
    assert fields["team"] == {"id": "T05KQ7ZT9RM", "domain": "acme-studio"}
    assert fields["trigger_id"] == TRIGGER


def test_slack_response_url_is_only_in_the_followup_marked_secret_for_30_minutes() -> None:
    (event,) = _slack_events(SLASH, SLASH_HEADERS)

    assert event.fields["followup"] == {
        "secret": True,
        "kind": "slack.response_url",
        "response_url": RESPONSE_URL,
        "url": RESPONSE_URL,
        "expires_at": "2025-11-21T10:30:00Z",
    }
    document = json.dumps(event.to_dict())
    assert document.count(RESPONSE_URL) == 2
    assert "fixtureVerificationTokenNotReal0" not in document


def test_slack_block_action_becomes_an_interaction_event() -> None:
    verdict = _slack_verify(BLOCK_ACTIONS)
    (event,) = _slack_events(BLOCK_ACTIONS)

    assert verdict.reply is None  # Slack only needs the 200 for a button click
    assert verdict.provider_delivery_id.startswith("trigger-8123456790345.")
    assert event.type == "command.interaction.task_mark_done"
    assert event.fields["action_id"] == "task_mark_done"
    assert event.fields["block_id"] == "task_actions_153104cd"
    assert event.fields["value"] == "153104cd-477e-809d-8dc4-ff2d96ae3090"
    assert event.fields["message"] == {
        "ts": "1763719201.004900",
        "text": "Write launch post: In progress, due Sat 28 Nov",
    }
    assert event.fields["followup"]["url"].startswith("https://hooks.slack.com/actions/")
    assert event.raw["response_url"].startswith("[redacted")


def test_slack_view_submissions_are_refused_as_unsupported() -> None:
    body = b"payload=" + urllib.parse.quote(json.dumps({"type": "view_submission"})).encode()

    error = _rejected(lambda: _slack_verify(body))

    assert (error.status, error.code) == (400, "unsupported_request")


def test_slack_unbalanced_quotes_still_split_into_words() -> None:
    assert split_args('add "Write launch post') == ["add", '"Write', "launch", "post"]
    (event,) = _slack_events(_slash("mine https://example.com/x"))
    assert event.fields["options"] == {}
    assert event.fields["args"] == ["mine", "https://example.com/x"]


# --- what rules see -----------------------------------------------------------------------


def _doc_rules(tmp_path: Path) -> Path:
    """The first YAML block of the chat-commands guide, as a rule file."""
    text = (REPO / "docs" / "sources" / "chat-commands.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(# rules/chat-commands\.yaml.*?)```", text, re.DOTALL)
    assert block, "docs/sources/chat-commands.md lost its rules/chat-commands.yaml example"
    (tmp_path / "chat-commands.yaml").write_text(block.group(1), encoding="utf-8")
    return tmp_path


def test_the_documented_tasks_mine_rule_matches_both_platforms(tmp_path: Path) -> None:
    # Given the guide's rule file, and `/tasks mine` typed in Slack and in Discord
    ruleset = load_ruleset(
        _doc_rules(tmp_path),
        connectors=load_plugins().connectors,
        destinations={
            "commands-log": Destination(name="commands-log", connector="log", options={})
        },
        engine=TemplateEngine(),
    )
    (slack,) = _slack_events(_slash("mine"))
    discord = _discord_event(
        _interaction(
            data={"id": "1", "name": "tasks", "type": 1, "options": [{"name": "mine", "type": 1}]}
        )
    )
    other = _discord_event(COMMAND)

    # Then the rule matches both, and not `/tasks status:in_progress`
    for event in (slack, discord):
        assert [r.id for r in match_rules(ruleset, event.to_dict())] == ["tasks-mine"]
    assert match_rules(ruleset, other.to_dict()) == []
