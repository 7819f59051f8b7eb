"""Slack slash commands and interactivity (buttons, menus, shortcuts) as `command.*` events.

Docs: https://api.slack.com/authentication/verifying-requests-from-slack,
https://api.slack.com/interactivity/slash-commands and
https://api.slack.com/reference/interaction-payloads/block-actions-payload
Signature: `X-Slack-Signature: v0=hex(HMAC_SHA256(signing secret, "v0:{ts}:{raw body}"))`
with `X-Slack-Request-Timestamp` (Unix seconds) inside a 5-minute replay window.
Slack waits 3 s and does not retry, so ingress answers at once: a slash command gets an
ephemeral acknowledgement, and the worker answers later through `response_url`
(valid for 30 minutes, at most 5 posts).
Delivery id: Slack sends none; see `provider_delivery_id_for`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import shlex
import urllib.parse
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from hub.clock import Clock
from hub.errors import MalformedPayload, SignatureError
from hub.events import Actor, Entity, Event, event_id_for, format_time
from hub.secrets import Secret
from hub.sources._http import check_fresh, parse_json_object, require_header
from hub.sources._values import mapping, source_path, str_or_none, type_word
from hub.sources.base import HookRequest, NormalizeContext, RawEvent, Source, Verdict

__all__ = [
    "SlackCommandsSource",
    "command_event",
    "interaction_events",
    "provider_delivery_id_for",
    "sign",
    "split_args",
]

SIGNATURE_HEADER = "X-Slack-Signature"
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
REPLAY_WINDOW = timedelta(minutes=5)
#: How long a response_url accepts messages (Slack: 30 minutes, up to 5 times).
RESPONSE_URL_LIFETIME = timedelta(minutes=30)
DEFAULT_ACK_TEXT = "Working on it…"
#: Interactivity payload types that become events; view submissions need a synchronous answer
#: shaped by the modal, which ingress cannot give.
INTERACTION_TYPES = ("block_actions", "shortcut", "message_action")
_OPTION = re.compile(r"^([A-Za-z_][\w-]*):(?!//)(.*)$", re.DOTALL)
_REDACTED = "[redacted: see data.fields.followup]"
_MASKED = "[redacted]"


class SlackCommandsSource(Source):
    """Verifies Slack slash commands and interactions and acknowledges them within 3 s."""

    name: ClassVar[str] = "slack"
    holds_credentials = True  # the interaction token / response_url (follow-ups)
    settings_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "ack_text": {
                "type": "string",
                "minLength": 1,
                "default": DEFAULT_ACK_TEXT,
                "description": "The ephemeral text Slack shows the invoker at once, before "
                "the rules' answer arrives through response_url.",
                "examples": ["Looking that up…"],
            },
        },
    }
    event_types: ClassVar[tuple[str, ...]] = ("command.*", "command.interaction.*")

    def __init__(self, *, ack_text: str = DEFAULT_ACK_TEXT) -> None:
        self._ack_text = ack_text

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> SlackCommandsSource:
        """Build from `sources.slack` in switchboard.yaml (validated by settings_schema)."""
        return cls(ack_text=str(options.get("ack_text", DEFAULT_ACK_TEXT)))

    def sign(self, body: bytes, secret: str, *, now: datetime) -> dict[str, str]:
        """Slack's v0 signature over `now` (verify refuses it five minutes later) and body."""
        timestamp = str(int(now.timestamp()))
        return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, body)}

    def verify(self, request: HookRequest, secret: Secret | None, clock: Clock) -> Verdict:
        if _is_ssl_check(request.body):
            # Slack's certificate probe carries no command; Bolt also answers it before the
            # signature check. Nothing is stored, so an unsigned one can do no harm.
            return Verdict(provider_delivery_id="ssl-check", store=False, status=200, reply={})
        if secret is None:
            raise SignatureError(
                "no signing secret is configured for source 'slack'; set sources.slack.secret "
                "(or SWITCHBOARD_SECRET_SLACK) to the app's Signing Secret"
            )
        signature = require_header(request.headers, SIGNATURE_HEADER, error=SignatureError)
        timestamp = require_header(request.headers, TIMESTAMP_HEADER, error=SignatureError)
        expected = sign(secret.reveal(), timestamp, request.body)
        # Ingress decodes headers as latin-1, and compare_digest raises on non-ASCII text.
        if not signature.isascii() or not hmac.compare_digest(expected, signature.lower()):
            raise SignatureError(
                f"{SIGNATURE_HEADER} does not match the timestamp and body; check the signing "
                "secret (Basic Information → App Credentials)"
            )
        check_fresh(timestamp, clock.now(), header=TIMESTAMP_HEADER, window=REPLAY_WINDOW)
        if _is_json(request.headers, request.body):
            payload = parse_json_object(request.body)
            if payload.get("type") == "url_verification":
                challenge = payload.get("challenge")
                if not isinstance(challenge, str):
                    raise MalformedPayload("url_verification without a challenge string")
                reply = {"challenge": challenge}
                return Verdict(
                    provider_delivery_id="url-verification", store=False, status=200, reply=reply
                )
            raise MalformedPayload(
                f"Slack JSON request of type {payload.get('type')!r} is not supported here; "
                "point only slash commands and interactivity at /hooks/slack",
                code="unsupported_request",
            )
        form = _form(request.body)
        if "payload" in form:
            interaction = _interaction(form["payload"])
            return Verdict(
                provider_delivery_id=provider_delivery_id_for(interaction, timestamp, signature),
                status=200,
            )
        if not form.get("command", "").startswith("/"):
            raise MalformedPayload("Slack form has neither a /command nor a payload")
        reply = {"response_type": "ephemeral", "text": self._ack_text}
        return Verdict(
            provider_delivery_id=provider_delivery_id_for(form, timestamp, signature),
            status=200,
            reply=reply,
        )

    def normalize(self, raw: RawEvent, ctx: NormalizeContext) -> list[Event]:
        if _is_json(raw.headers, raw.body):
            return []  # url_verification is never stored
        form = _form(raw.body)
        when = _request_time(raw.headers) or raw.received_at
        if "payload" in form:
            return interaction_events(_interaction(form["payload"]), raw.provider_delivery_id, when)
        return [command_event(form, raw.provider_delivery_id, when)]


def sign(signing_secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 signature of one request, as `X-Slack-Signature` carries it."""
    base = b"v0:" + timestamp.encode("latin-1") + b":" + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def provider_delivery_id_for(request: Mapping[str, Any], timestamp: str, signature: str) -> str:
    """Slack's trigger_id, else a hash of the signed timestamp and signature.

    Slack sends no delivery id. trigger_id names one user action and sits in the signed
    body, so a captured request replayed, or re-signed with a fresh timestamp, keeps it and
    is dropped as a duplicate. Shortcut-less payloads fall back to the signature, which is
    unique per (timestamp, body) and equally stable across an exact replay.
    """
    trigger = request.get("trigger_id")
    if isinstance(trigger, str) and trigger:
        return f"trigger-{trigger}"
    digest = hashlib.sha256(f"{timestamp}:{signature}".encode("latin-1")).hexdigest()
    return f"sig-{digest[:32]}"


def split_args(text: str) -> list[str]:
    """Shell-like words, so `status:"In progress"` stays one; unbalanced quotes split plainly."""
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def command_event(form: Mapping[str, str], provider_delivery_id: str, when: datetime) -> Event:
    """A slash command; `response_url` goes only to `fields.followup`, marked secret."""
    name = form["command"].lstrip("/")
    text = form.get("text", "")
    args = split_args(text)
    team_id = form.get("team_id") or None
    user = {"id": form.get("user_id") or None, "name": form.get("user_name") or None}
    fields: dict[str, Any] = {
        "platform": "slack",
        "command": name,
        "text": text,
        "args": args,
        "options": _options(args),
        "user": user,
        "channel": {"id": form.get("channel_id") or None, "name": form.get("channel_name")},
        "team": {"id": team_id, "domain": form.get("team_domain")},
        "trigger_id": form.get("trigger_id"),
        "followup": _followup(form.get("response_url"), when),
    }
    return Event(
        id=event_id_for("slack", provider_delivery_id),
        source=source_path("slack", team_id or "unknown"),
        type=f"command.{type_word(name)}",
        subject=f"commands/{provider_delivery_id}",
        time=when,
        entity=Entity(kind="command", id=provider_delivery_id, title=f"/{name} {text}".strip()),
        actor=Actor(id=user["id"], name=user["name"]),
        fields=fields,
        raw=_redacted(form),
    )


def interaction_events(
    payload: Mapping[str, Any], provider_delivery_id: str, when: datetime
) -> list[Event]:
    """One event per action of a block_actions payload; one for a shortcut."""
    user = mapping(payload.get("user"))
    team = mapping(payload.get("team"))
    channel = mapping(payload.get("channel"))
    kind = str(payload.get("type"))
    base: dict[str, Any] = {
        "platform": "slack",
        "interaction": kind,
        "user": {"id": str_or_none(user.get("id")), "name": str_or_none(user.get("username"))},
        "channel": {
            "id": str_or_none(channel.get("id")),
            "name": str_or_none(channel.get("name")),
        },
        "team": {"id": str_or_none(team.get("id")), "domain": str_or_none(team.get("domain"))},
        "trigger_id": str_or_none(payload.get("trigger_id")),
        "message": _message(payload),
        "followup": _followup(payload.get("response_url"), when),
    }
    if kind == "block_actions":
        actions = [mapping(a) for a in payload.get("actions") or []]
        specifics = [
            {
                "action_id": str_or_none(a.get("action_id")),
                "block_id": str_or_none(a.get("block_id")),
                "action_type": str_or_none(a.get("type")),
                "value": _action_value(a),
            }
            for a in actions
        ]
    else:
        specifics = [{"action_id": str_or_none(payload.get("callback_id"))}]
    raw = _redacted(payload)
    return [
        Event(
            id=event_id_for("slack", provider_delivery_id, index),
            source=source_path("slack", base["team"]["id"] or "unknown"),
            type=f"command.interaction.{type_word(spec['action_id'] or kind)}",
            subject=f"commands/{provider_delivery_id}",
            time=when,
            entity=Entity(kind="interaction", id=provider_delivery_id, title=spec["action_id"]),
            actor=Actor(id=base["user"]["id"], name=base["user"]["name"]),
            fields={**base, **spec},
            raw=raw,
        )
        for index, spec in enumerate(specifics)
    ]


def _request_time(headers: Mapping[str, str]) -> datetime | None:
    """The signed request time: the same on every replay, unlike our clock."""
    value = headers.get(TIMESTAMP_HEADER.lower(), "").strip()
    if not (value.isascii() and value.isdigit() and len(value) <= 12):
        return None
    return datetime.fromtimestamp(int(value), UTC)


def _is_json(headers: Mapping[str, str], body: bytes) -> bool:
    return "json" in headers.get("content-type", "") or body.lstrip().startswith(b"{")


def _is_ssl_check(body: bytes) -> bool:
    if len(body) > 512 or b"ssl_check=1" not in body:
        return False
    try:
        form = _form(body)
    except MalformedPayload:
        return False
    return form.get("ssl_check") == "1" and "command" not in form and "payload" not in form


def _form(body: bytes) -> dict[str, str]:
    """The first value of each field; Slack sends each once."""
    try:
        pairs = urllib.parse.parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, errors="strict"
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedPayload(
            "form body is not valid URL-encoded UTF-8", code="bad_encoding"
        ) from exc
    form: dict[str, str] = {}
    for key, value in pairs:
        form.setdefault(key, value)
    return form


def _interaction(text: str) -> dict[str, Any]:
    payload = parse_json_object(text.encode("utf-8"))
    kind = payload.get("type")
    if kind not in INTERACTION_TYPES:
        raise MalformedPayload(
            f"Slack interaction type {kind!r} is not supported; supported: "
            f"{', '.join(INTERACTION_TYPES)}",
            code="unsupported_request",
        )
    if kind == "block_actions" and not payload.get("actions"):
        raise MalformedPayload("Slack block_actions payload has no actions")
    return payload


def _options(args: list[str]) -> dict[str, str]:
    """`key:value` words as options (`status:"In progress"` → {"status": "In progress"})."""
    found = (_OPTION.match(a) for a in args)
    return {m.group(1): m.group(2) for m in found if m}


def _action_value(action: Mapping[str, Any]) -> Any:
    """What the user picked: a button's value, a menu's choice(s), a date or a text input."""
    if "value" in action:
        return action["value"]
    if selected := mapping(action.get("selected_option")):
        return selected.get("value")
    if isinstance(action.get("selected_options"), list):
        return [mapping(o).get("value") for o in action["selected_options"]]
    for key in ("selected_user", "selected_channel", "selected_conversation", "selected_date"):
        if key in action:
            return action[key]
    return None


def _message(payload: Mapping[str, Any]) -> dict[str, Any] | None:
    message = mapping(payload.get("message"))
    if not message:
        return None
    return {"ts": str_or_none(message.get("ts")), "text": str_or_none(message.get("text"))}


def _followup(response_url: object, when: datetime) -> dict[str, Any] | None:
    """A SHORT-LIVED SECRET: anyone holding the URL can post into that conversation."""
    if not isinstance(response_url, str) or not response_url:
        return None
    return {
        "secret": True,
        "kind": "slack.response_url",
        "response_url": response_url,
        "url": response_url,
        "expires_at": format_time(when + RESPONSE_URL_LIFETIME),
    }


def _redacted(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload without the legacy verification token or the response_url."""
    out = dict(payload)
    if "token" in out:
        out["token"] = _MASKED
    if "response_url" in out:
        out["response_url"] = _REDACTED
    return out
