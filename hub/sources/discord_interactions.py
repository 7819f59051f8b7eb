"""Discord interactions endpoint: slash commands, components and modals as `command.*` events.

Docs: https://discord.com/developers/docs/interactions/receiving-and-responding
Signature: `X-Signature-Ed25519: hex(Ed25519(timestamp + raw body))`, verified with the
application's public key (hex, from the developer portal), and `X-Signature-Timestamp`.
Discord probes the endpoint with bad signatures when the URL is saved and expects 401.
Discord waits 3 s and never retries, so every answer is decided here without I/O: PING gets
PONG, a command gets a deferred response (type 5) and the worker follows up later through
the interaction token, which is valid for 15 minutes.
Delivery id: the interaction id (a snowflake, unique per invocation).
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from nacl.exceptions import BadSignatureError, CryptoError
from nacl.signing import VerifyKey

from connectors.base import CliCommand
from hub.clock import Clock
from hub.errors import MalformedPayload, SignatureError
from hub.events import Actor, Entity, Event, event_id_for, format_time
from hub.secrets import Secret
from hub.sources._http import check_fresh, parse_json_object, require_header
from hub.sources._values import mapping, source_path, str_or_none, type_word
from hub.sources.base import CannotSign, HookRequest, NormalizeContext, RawEvent, Source, Verdict

__all__ = [
    "API_BASE",
    "DiscordInteractionsSource",
    "flatten_options",
    "interaction_event",
    "snowflake_time",
]

SIGNATURE_HEADER = "X-Signature-Ed25519"
TIMESTAMP_HEADER = "X-Signature-Timestamp"
#: Requests signed further than this from our clock are refused as replays.
REPLAY_WINDOW = timedelta(minutes=5)
#: How long an interaction token accepts follow-ups (Discord's documented limit).
TOKEN_LIFETIME = timedelta(minutes=15)
API_BASE = "https://discord.com/api/v10"
#: Discord epoch (2015-01-01) in ms; a snowflake's top 42 bits count ms since then.
_DISCORD_EPOCH_MS = 1_420_070_400_000
_EPHEMERAL = 1 << 6

# Interaction types (https://discord.com/developers/docs/interactions/receiving-and-responding
# #interaction-object-interaction-type) and the response types we answer with.
PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5
PONG, DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE_MESSAGE, AUTOCOMPLETE_RESULT = 1, 5, 6, 8
_SUB_COMMAND, _SUB_COMMAND_GROUP = 1, 2
_BAD_SIGNATURE = f"{SIGNATURE_HEADER} does not match the timestamp and body; check the public key"
_REDACTED = "[redacted: see data.fields.followup]"


class DiscordInteractionsSource(Source):
    """Verifies Discord interactions and answers them within Discord's 3-second limit."""

    name: ClassVar[str] = "discord"
    holds_credentials = True  # the interaction token / response_url (follow-ups)
    settings_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "public_key": {
                "type": "string",
                "pattern": "^[0-9a-fA-F]{64}$",
                "description": "The application's public key (General Information page); "
                "not secret. Used when the source has no `secret`.",
                "examples": ["e9f1c6a3" * 8],
            },
            "ephemeral": {
                "type": "boolean",
                "default": False,
                "description": "Defer command answers as ephemeral (only the invoker sees "
                "the follow-up).",
                "examples": [True],
            },
        },
    }
    event_types: ClassVar[tuple[str, ...]] = ("command.*", "command.interaction.*")

    def __init__(self, *, public_key: str | None = None, ephemeral: bool = False) -> None:
        self._public_key = public_key
        self._ephemeral = ephemeral

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> DiscordInteractionsSource:
        """Build from `sources.discord` in switchboard.yaml (validated by settings_schema)."""
        key = options.get("public_key")
        return cls(
            public_key=str(key) if key else None, ephemeral=bool(options.get("ephemeral", False))
        )

    def sign(self, body: bytes, secret: str, *, now: datetime) -> dict[str, str]:
        """Discord signs with Ed25519: the secret here is the public key, which verifies
        but cannot sign."""
        raise CannotSign(
            "the discord source cannot sign: Discord signs interactions with its Ed25519 "
            "private key, and the hub holds only the application's public key; send a real "
            "interaction from Discord (or a test signed with a key pair of your own)"
        )

    @classmethod
    def cli_commands(cls) -> Sequence[CliCommand]:
        """`switchboard discord register-commands`."""
        from hub.sources._discord_cli import cli_commands

        return cli_commands()

    def verify(self, request: HookRequest, secret: Secret | None, clock: Clock) -> Verdict:
        key = self._verify_key(secret)
        signature = require_header(request.headers, SIGNATURE_HEADER, error=SignatureError)
        timestamp = require_header(request.headers, TIMESTAMP_HEADER, error=SignatureError)
        if not _is_valid_signature(key, timestamp, request.body, signature):
            raise SignatureError(_BAD_SIGNATURE)
        check_fresh(timestamp, clock.now(), header=TIMESTAMP_HEADER, window=REPLAY_WINDOW)
        payload = parse_json_object(request.body)
        kind = payload.get("type")
        interaction_id = _snowflake(payload.get("id"), "id")
        if kind == PING:
            return Verdict(
                provider_delivery_id=interaction_id, store=False, status=200, reply={"type": PONG}
            )
        if kind == AUTOCOMPLETE:
            # Suggestions must come back in this response; ingress cannot query anything.
            reply = {"type": AUTOCOMPLETE_RESULT, "data": {"choices": []}}
            return Verdict(
                provider_delivery_id=interaction_id, store=False, status=200, reply=reply
            )
        if kind not in (APPLICATION_COMMAND, MESSAGE_COMPONENT, MODAL_SUBMIT):
            raise MalformedPayload(f"Discord interaction type {kind!r} is not supported")
        _command_name(payload)  # refuse a body the worker could not normalize
        return Verdict(provider_delivery_id=interaction_id, status=200, reply=self._deferral(kind))

    def normalize(self, raw: RawEvent, ctx: NormalizeContext) -> list[Event]:
        payload = parse_json_object(raw.body)
        if payload.get("type") not in (APPLICATION_COMMAND, MESSAGE_COMPONENT, MODAL_SUBMIT):
            return []
        return [interaction_event(payload, provider_delivery_id=raw.provider_delivery_id)]

    def _verify_key(self, secret: Secret | None) -> VerifyKey:
        text = secret.reveal() if secret is not None else self._public_key
        if not text:
            raise SignatureError(
                "no public key is configured for source 'discord'; set sources.discord.secret "
                "(or SWITCHBOARD_SECRET_DISCORD) to the application's public key"
            )
        try:
            return VerifyKey(bytes.fromhex(text.strip()))
        except (ValueError, TypeError, CryptoError) as exc:
            raise SignatureError(
                "the configured Discord public key is not 64 hex characters; copy it from "
                "the developer portal's General Information page",
                code="bad_public_key",
            ) from exc

    def _deferral(self, kind: int) -> Mapping[str, Any]:
        """Type 6 keeps a component's message as is; otherwise show 'thinking…' (type 5)."""
        if kind == MESSAGE_COMPONENT:
            return {"type": DEFERRED_UPDATE_MESSAGE}
        if self._ephemeral:
            return {"type": DEFERRED_CHANNEL_MESSAGE, "data": {"flags": _EPHEMERAL}}
        return {"type": DEFERRED_CHANNEL_MESSAGE}


def _is_valid_signature(key: VerifyKey, timestamp: str, body: bytes, signature: str) -> bool:
    """One outcome for every kind of bad signature, so a failure teaches an attacker nothing."""
    try:
        key.verify(timestamp.encode("latin-1") + body, binascii.unhexlify(signature))
    except (BadSignatureError, CryptoError, ValueError, TypeError, binascii.Error):
        return False
    return True


def snowflake_time(snowflake: str) -> datetime:
    """When Discord created the object: the same on every replay, unlike our clock."""
    return datetime.fromtimestamp(((int(snowflake) >> 22) + _DISCORD_EPOCH_MS) / 1000, UTC)


def interaction_event(payload: Mapping[str, Any], *, provider_delivery_id: str) -> Event:
    """One interaction as an event; the follow-up credentials go to `fields.followup` only."""
    kind = payload.get("type")
    interaction_id = _snowflake(payload.get("id"), "id")
    data = mapping(payload.get("data"))
    name = _command_name(payload)
    user = mapping(mapping(payload.get("member")).get("user")) or mapping(payload.get("user"))
    guild_id = str_or_none(payload.get("guild_id"))
    channel = mapping(payload.get("channel"))
    channel_id = str_or_none(payload.get("channel_id") or channel.get("id"))
    created = snowflake_time(interaction_id)
    fields: dict[str, Any] = {
        "platform": "discord",
        "user": {
            "id": str_or_none(user.get("id")),
            "username": str_or_none(user.get("username")),
            "global_name": str_or_none(user.get("global_name")),
        },
        "channel": {"id": channel_id, "name": str_or_none(channel.get("name"))},
        "guild": {"id": guild_id},
        "locale": str_or_none(payload.get("locale")),
        "followup": _followup(payload, created),
    }
    if kind == APPLICATION_COMMAND:
        path, options = flatten_options(data.get("options"))
        args = [*path, *(f"{k}:{v}" for k, v in options.items())]
        fields.update(
            command=name,
            subcommand=" ".join(path) or None,
            options=options,
            args=args,
            text=" ".join(args),
            target_id=str_or_none(data.get("target_id")),
        )
        type_, title = f"command.{type_word(name)}", " ".join([f"/{name}", *args])
    else:
        fields.update(
            interaction="component" if kind == MESSAGE_COMPONENT else "modal",
            action_id=name,
            values=_component_values(data),
            message_id=str_or_none(mapping(payload.get("message")).get("id")),
        )
        type_, title = f"command.interaction.{type_word(name)}", name
    raw = dict(payload)
    if "token" in raw:
        raw["token"] = _REDACTED
    return Event(
        id=event_id_for("discord", provider_delivery_id),
        source=source_path("discord", guild_id or "dm"),
        type=type_,
        subject=f"interactions/{interaction_id}",
        time=created,
        entity=Entity(kind="command", id=interaction_id, title=title),
        actor=Actor(
            id=str_or_none(user.get("id")),
            name=str_or_none(user.get("global_name") or user.get("username")),
        ),
        fields=fields,
        raw=raw,
    )


def flatten_options(options: object) -> tuple[list[str], dict[str, Any]]:
    """Subcommand (group) names as a path, and the leaf options as {name: value}."""
    path: list[str] = []
    values: dict[str, Any] = {}
    current = options
    while isinstance(current, list):
        nested = None
        for option in current:
            opt = mapping(option)
            if opt.get("type") in (_SUB_COMMAND, _SUB_COMMAND_GROUP):
                path.append(str(opt.get("name", "")))
                nested = opt.get("options") or []
            elif "name" in opt:
                values[str(opt["name"])] = opt.get("value")
        current = nested
    return path, values


def _followup(payload: Mapping[str, Any], created: datetime) -> dict[str, Any] | None:
    """A SHORT-LIVED SECRET: anyone holding it can post as the app in that channel (15 min)."""
    token, app_id = payload.get("token"), payload.get("application_id")
    if not isinstance(token, str) or not token or app_id is None:
        return None
    return {
        "secret": True,
        "kind": "discord.interaction",
        "application_id": str(app_id),
        "interaction_token": token,
        # POST here for a follow-up; PATCH {url}/messages/@original edits the deferred answer.
        "url": f"{API_BASE}/webhooks/{app_id}/{token}",
        "expires_at": format_time(created + TOKEN_LIFETIME),
    }


def _component_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """Select menu choices, or a modal's text inputs by their custom_id."""
    if isinstance(data.get("values"), list):
        return {"values": [str(v) for v in data["values"]]}
    out: dict[str, Any] = {}
    stack: list[Any] = list(data.get("components") or [])
    while stack:
        item = mapping(stack.pop(0))
        if isinstance(item.get("components"), list):
            stack.extend(item["components"])
        if item.get("custom_id") is not None and "value" in item:
            out[str(item["custom_id"])] = item["value"]
        elif isinstance(item.get("component"), Mapping):
            stack.append(item["component"])
    return out


def _command_name(payload: Mapping[str, Any]) -> str:
    data = mapping(payload.get("data"))
    key = "name" if payload.get("type") == APPLICATION_COMMAND else "custom_id"
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise MalformedPayload(f"Discord interaction has no data.{key}")
    return value


def _snowflake(value: object, what: str) -> str:
    """A Discord id: a 64-bit unsigned integer written in decimal (longer ones would
    place the interaction after the year 9999)."""
    if not (
        isinstance(value, str)
        and value.isascii()
        and value.isdigit()
        and len(value) <= 20
        and int(value) < 2**64
    ):
        raise MalformedPayload(f"Discord interaction {what} must be a snowflake string")
    return value
