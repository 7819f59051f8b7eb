"""Slack connector: post, edit and thread messages via slack-sdk or an incoming webhook.

Web API: https://docs.slack.dev/reference/methods/chat.postMessage and
https://docs.slack.dev/reference/methods/chat.update (bot token, Block Kit, `ts` refs).
Incoming webhooks: https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks
Rate limits: https://docs.slack.dev/apis/web-api/rate-limits — about one message per second
per channel; a 429 carries `Retry-After` (seconds) and `{"ok": false, "error": "ratelimited"}`.

With a bot token a message can go to a person (`user:`, or `to: {person: ...}` in a rule:
conversations.open gives the DM channel once, then it is cached), to any channel
(`channel_id:`), carry Block Kit buttons (`buttons:`) and edit an earlier message (`edit:`).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, get_args

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from connectors.base import (
    SECRET_REF_SCHEMA,
    ConnectorEnv,
    DeliveryContext,
    Destination,
    RenderedAction,
    SendResult,
    classify_status,
    fail,
    ok,
    parse_retry_after,
    redact_url,
    retry,
    secret_option,
)

log = logging.getLogger(__name__)
_DM_CACHE = 10_000

Mode = Literal["post", "upsert", "thread"]
MODES: tuple[str, ...] = get_args(Mode)
DEFAULT_BASE_URL = "https://slack.com/api/"
DEFAULT_TIMEOUT_S = 10.0
# https://docs.slack.dev/reference/methods/chat.postMessage#truncating (40,000 characters),
# https://docs.slack.dev/reference/block-kit/blocks/section-block (3000), header (150).
TEXT_LIMIT = 40_000
SECTION_TEXT_LIMIT = 3000
HEADER_TEXT_LIMIT = 150
ELLIPSIS = "…"

params_schema: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["channel"],
    "anyOf": [{"required": ["text"]}, {"required": ["blocks"]}, {"required": ["buttons"]}],
    "properties": {
        "channel": {
            "type": "string",
            "description": "Name of a slack destination in switchboard.yaml.",
            "examples": ["task-notifications"],
        },
        "text": {
            "type": "string",
            "description": "Message text (mrkdwn); with blocks, the notification fallback. "
            "Without it, the fallback is taken from the blocks' text.",
            "examples": ["*{{ event.data.entity.title }}* moved to {{ event.data.fields.Status }}"],
        },
        "blocks": {
            "type": "array",
            "maxItems": 50,
            "description": "Block Kit blocks; every string in them may be a template.",
            "examples": [
                [{"type": "section", "text": {"type": "mrkdwn", "text": "*{{ event.subject }}*"}}]
            ],
            "items": {"type": "object", "required": ["type"]},
        },
        "mode": {
            "enum": list(MODES),
            "default": "post",
            "description": "post: a new message each time; upsert: edit the entity's earlier "
            "message; thread: reply in the thread of the entity's first message.",
            "examples": ["upsert"],
        },
        "reply_broadcast": {
            "type": "boolean",
            "description": "mode thread: also show the reply in the channel.",
            "examples": [True],
        },
        "unfurl_links": {
            "type": "boolean",
            "description": "Unfurl text links (Slack's default: only for bots, off).",
            "examples": [False],
        },
        "unfurl_media": {
            "type": "boolean",
            "description": "Unfurl media links.",
            "examples": [False],
        },
        "username": {
            "type": "string",
            "description": "Sender name (bot token with chat:write.customize).",
            "examples": ["Tasks Router"],
        },
        "icon_emoji": {
            "type": "string",
            "description": "Sender icon (bot token with chat:write.customize).",
            "examples": [":white_check_mark:"],
        },
        "user": {
            "type": "string",
            "description": "Bot only: DM this Slack user id (a rule's `to: {person: ...}` "
            "fills it from people:); needs the im:write scope.",
            "examples": ["U05LB8ADA7Q"],
        },
        "channel_id": {
            "type": "string",
            "description": "Bot only: post to this channel id instead of the destination's.",
            "examples": ["C06T4SK5Q2W"],
        },
        "buttons": {
            "type": "array",
            "maxItems": 25,
            "description": "Buttons in an actions block after the blocks; a click reaches the "
            "slack source as block_actions with the button's action_id and value.",
            "examples": [[{"label": "Approve", "action_id": "approve", "style": "primary"}]],
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["label"],
                "properties": {
                    "label": {"type": "string", "maxLength": 75},
                    "action_id": {"type": "string", "maxLength": 255},
                    "value": {"type": "string", "maxLength": 2000},
                    "url": {"type": "string"},
                    "style": {"enum": ["primary", "danger", "default"]},
                },
            },
        },
        "buttons_block_id": {
            "type": "string",
            "description": "block_id of the buttons' actions block.",
            "examples": ["approval_153104cd"],
        },
        "edit": {
            "type": "string",
            "description": "Bot only: edit this message (a ref `channel:ts`) with chat.update.",
            "examples": ["D06V2KDMA7Q:1763719201.004900"],
        },
    },
}

destination_schema: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "oneOf": [{"required": ["bot_token"]}, {"required": ["webhook_url"]}],
    "properties": {
        "bot_token": {
            **SECRET_REF_SCHEMA,
            "description": "Bot token (xoxb-…) with chat:write; enables upsert and thread.",
            "examples": [{"env": "SLACK_BOT_TOKEN"}],
        },
        "channel": {
            "type": "string",
            "minLength": 1,
            "description": "Channel ID the bot posts to when an action names none (no "
            "`user:` or `channel_id:`); the app must be in the channel.",
            "examples": ["C06T4SK5Q2W"],
        },
        "webhook_url": {
            **SECRET_REF_SCHEMA,
            "description": "Incoming webhook URL (a secret: it grants posting); post only.",
            "examples": [{"env": "SLACK_WEBHOOK_URL"}],
        },
        "base_url": {
            "type": "string",
            "default": DEFAULT_BASE_URL,
            "description": "Web API base URL; change it only for a proxy or a test double.",
            "examples": [DEFAULT_BASE_URL],
        },
        "timeout_s": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 120,
            "default": DEFAULT_TIMEOUT_S,
            "description": "Seconds to wait for Slack before the attempt is retried.",
            "examples": [10],
        },
    },
}

_REF = re.compile(r"([A-Z0-9]+):(\d+\.\d+)(?::(\d+\.\d+))?")
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{6,}")
#: aiohttp's errors for a URL no retry can fix (NonHttpUrlClientError is not an InvalidURL).
_BAD_URL = (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError)


@dataclass(frozen=True, slots=True)
class MessageRef:
    """A posted message as `channel:ts`, or `channel:ts:thread_ts` for a thread reply."""

    channel: str
    ts: str
    thread_ts: str | None = None

    @property
    def root_ts(self) -> str:
        return self.thread_ts or self.ts

    def __str__(self) -> str:
        suffix = f":{self.thread_ts}" if self.thread_ts else ""
        return f"{self.channel}:{self.ts}{suffix}"

    @classmethod
    def parse(cls, text: str | None) -> MessageRef | None:
        match = _REF.fullmatch(text or "")
        return cls(*match.groups()) if match else None


@dataclass(frozen=True, slots=True)
class Message:
    """The content of one message, already within Slack's limits."""

    text: str
    blocks: list[dict[str, Any]] | None
    extra: dict[str, Any]


class SlackConnector:
    """Sends Block Kit messages; with a bot token it can also edit and reply in threads."""

    name: ClassVar[str] = "slack"
    params_schema: ClassVar[dict[str, Any]] = params_schema
    destination_schema: ClassVar[dict[str, Any]] = destination_schema
    destination_param: ClassVar[str | None] = "channel"
    #: Slack allows about one message per second per channel (a destination is a channel).
    rate_limits: ClassVar[tuple[tuple[int, float], ...]] = ((1, 1.0),)

    #: A rule's `to: {person: ...}` fills `user:` with the person's Slack id.
    person_address: ClassVar[tuple[str, str]] = ("user", "slack")

    def __init__(self, env: ConnectorEnv) -> None:
        # slack-sdk's clients log request URLs at DEBUG; a webhook URL is a secret.
        self._sdk_log = logging.getLogger(f"{__name__}.sdk")
        self._sdk_log.setLevel(logging.INFO)
        #: (bot token digest, user id) → DM channel id, so a DM opens once per person.
        self._dms: dict[tuple[str, str], str] = {}

    async def send(self, action: RenderedAction, ctx: DeliveryContext) -> SendResult:
        dest = ctx.destination
        if dest is None:
            return fail("slack action has no destination; name one with `channel`")
        mode = action.params.get("mode") or action.operation or "post"
        if mode not in MODES:
            return fail(f"unknown slack mode/operation '{mode}'; use one of {', '.join(MODES)}")
        message = build_message(action.params)
        timeout_s = float(dest.options.get("timeout_s", DEFAULT_TIMEOUT_S))
        token = secret_option(dest, "bot_token")
        if token:
            return await self._send_api(token, mode, message, dest, ctx, timeout_s, action.params)
        url = secret_option(dest, "webhook_url")
        if bot_only := [k for k in ("user", "channel_id", "edit") if action.params.get(k)]:
            return fail(
                f"slack `{bot_only[0]}:` needs a bot_token destination; "
                f"'{dest.name}' is an incoming webhook"
            )
        if url:
            if mode != "post":
                return fail(
                    f"slack mode '{mode}' needs a bot_token destination: an incoming webhook "
                    f"cannot edit messages or tell their ts (destination '{dest.name}')"
                )
            return await self._send_webhook(url, message, dest, ctx, timeout_s)
        return fail(f"slack destination '{dest.name}' has neither a bot_token nor a webhook_url")

    async def _send_api(
        self,
        token: str,
        mode: str,
        message: Message,
        dest: Destination,
        ctx: DeliveryContext,
        timeout_s: float,
        params: Mapping[str, Any],
    ) -> SendResult:
        base_url = str(dest.options.get("base_url", DEFAULT_BASE_URL)).rstrip("/") + "/"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as s:
            client = AsyncWebClient(
                token=token, base_url=base_url, session=s, retry_handlers=[], logger=self._sdk_log
            )
            call = _ApiCall(client, dest, ctx, secrets=(token,), base_url=base_url)
            if params.get("edit"):
                edited = MessageRef.parse(str(params["edit"]))
                if edited is None:
                    return fail(f"slack edit: {params['edit']!r} is not a message ref channel:ts")
                result, _ = await call.update(edited, message)
                return result
            if params.get("user"):
                opened = await self._dm_channel(call, token, str(params["user"]))
                if isinstance(opened, SendResult):
                    return opened
                channel = opened
            else:
                channel = str(params.get("channel_id") or dest.options.get("channel", ""))
            if not channel:
                return fail(
                    f"slack destination '{dest.name}' has no channel: give the action "
                    "channel_id: or user:, or set channel on the destination"
                )
            own = MessageRef.parse(ctx.previous_ref)
            entity = _entity_ref(ctx, channel)
            # A resend of a delivered message edits it instead of posting it twice.
            target = own or (
                MessageRef(entity.channel, entity.root_ts) if entity and mode == "upsert" else None
            )
            if target is not None:
                result, error = await call.update(target, message)
                if error != "message_not_found":
                    return result
                # Someone deleted the message: post a new one so later upserts edit that.
                log.info("slack message %s is gone; posting a new one", target)
            thread_ts = entity.root_ts if entity and mode == "thread" else None
            return await call.post(
                entity.channel if thread_ts and entity else channel, message, thread_ts
            )

    async def _dm_channel(self, call: _ApiCall, token: str, user: str) -> str | SendResult:
        """https://docs.slack.dev/reference/methods/conversations.open"""
        key = (hashlib.sha256(token.encode()).hexdigest()[:16], user)
        if (known := self._dms.get(key)) is not None:
            return known
        opened = await call.open_dm(user)
        if isinstance(opened, str):
            if len(self._dms) >= _DM_CACHE:
                self._dms.clear()
            self._dms[key] = opened
        return opened

    async def _send_webhook(
        self, url: str, message: Message, dest: Destination, ctx: DeliveryContext, timeout_s: float
    ) -> SendResult:
        secrets = _url_secrets(url)
        where = f"the incoming webhook of destination '{dest.name}'"
        body = {"text": message.text, **message.extra}
        if message.blocks is not None:
            body["blocks"] = message.blocks
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as s:
            client = AsyncWebhookClient(url=url, session=s, retry_handlers=[], logger=self._sdk_log)
            try:
                response = await client.send_dict(body)
            except _BAD_URL as exc:
                # Retrying cannot fix the URL, and its text is the secret: name only the problem.
                return fail(
                    f"slack webhook_url of destination '{dest.name}' is not a usable http(s) URL "
                    f"({type(exc).__name__}); check the secret"
                )
            except Exception as exc:  # network errors, timeouts, anything the SDK raises
                return _transport_retry(exc, where, secrets)
        return classify_webhook(
            response.status_code,
            response.body,
            response.headers,
            ctx=ctx,
            where=where,
            secrets=secrets,
        )


class _ApiCall:
    """One Web API call through slack-sdk, its answer mapped to a SendResult."""

    def __init__(
        self,
        client: AsyncWebClient,
        dest: Destination,
        ctx: DeliveryContext,
        *,
        secrets: tuple[str, ...],
        base_url: str,
    ) -> None:
        self.client, self.dest, self.ctx = client, dest, ctx
        self.secrets, self.base_url = secrets, base_url

    async def post(self, channel: str, message: Message, thread_ts: str | None) -> SendResult:
        kwargs: dict[str, Any] = {"channel": channel, "text": message.text, **message.extra}
        if message.blocks is not None:
            kwargs["blocks"] = message.blocks
        if thread_ts is None:
            kwargs.pop("reply_broadcast", None)
        else:
            kwargs["thread_ts"] = thread_ts
        result, _ = await self._call("chat.postMessage", kwargs, thread_ts)
        return result

    async def open_dm(self, user: str) -> str | SendResult:
        """The DM channel id with `user`, or why there is none."""
        result, _ = await self._call("conversations.open", {"users": user}, None)
        if result.outcome == "fail":
            return fail(f"cannot open a DM with Slack user {user}: {result.reason}")
        if result.outcome != "ok" or not result.ref:
            return result
        return result.ref

    async def update(self, target: MessageRef, message: Message) -> tuple[SendResult, str | None]:
        kwargs: dict[str, Any] = {"channel": target.channel, "ts": target.ts, "text": message.text}
        # chat.update keeps the old blocks when none are given; [] clears them.
        kwargs["blocks"] = message.blocks if message.blocks is not None else []
        return await self._call("chat.update", kwargs, target.thread_ts)

    async def _call(
        self, method: str, kwargs: dict[str, Any], thread_ts: str | None
    ) -> tuple[SendResult, str | None]:
        """The result, and Slack's error code when it answered `ok: false`."""
        where = f"{redact_url(self.base_url + method)} (destination '{self.dest.name}')"
        try:
            if method == "chat.update":
                response = await self.client.chat_update(**kwargs)
            elif method == "conversations.open":
                response = await self.client.conversations_open(**kwargs)
            else:
                response = await self.client.chat_postMessage(**kwargs)
        except SlackApiError as exc:
            data = getattr(exc.response, "data", None)
            error = data.get("error") if isinstance(data, dict) else None
            result = classify_api_error(
                exc, method=method, ctx=self.ctx, where=where, secrets=self.secrets
            )
            return result, error if isinstance(error, str) else None
        except _BAD_URL as exc:
            reason = (
                f"slack base_url of destination '{self.dest.name}' is not a usable http(s) URL "
                f"({type(exc).__name__}: {_scrub(str(exc), self.secrets)})"
            )
            return fail(reason), None
        except Exception as exc:  # network errors, timeouts, bodies the SDK cannot read
            return _transport_retry(exc, where, self.secrets), None
        data = response.data if isinstance(response.data, dict) else {}
        if method == "conversations.open":
            opened = data.get("channel")
            dm = opened.get("id") if isinstance(opened, dict) else None
            if not isinstance(dm, str):
                return retry(None, "slack conversations.open answered ok without a channel"), None
            return ok(dm, status_code=response.status_code), None
        channel, ts = data.get("channel"), data.get("ts")
        if not isinstance(channel, str) or not isinstance(ts, str):
            # Slack said ok, so the message exists; a retry would post it twice.
            log.warning("slack %s answered ok without channel/ts; no ref is kept", method)
            return ok(None, status_code=response.status_code), None
        ref = MessageRef(channel, ts, thread_ts)
        return ok(str(ref), status_code=response.status_code), None


def build_message(params: Mapping[str, Any]) -> Message:
    """Text, blocks and options for Slack, within its limits; text falls back to the blocks."""
    blocks = [_block(b) for b in params["blocks"]] if params.get("blocks") is not None else None
    if params.get("buttons"):
        actions = {"type": "actions", "elements": [_button(b) for b in params["buttons"]]}
        if params.get("buttons_block_id"):
            actions = {**actions, "block_id": str(params["buttons_block_id"])}
        blocks = [*(blocks or []), actions]
    text = str(params.get("text") or "") or _fallback_text(blocks or []) or "New message"
    extra = {
        key: params[key]
        for key in ("reply_broadcast", "unfurl_links", "unfurl_media", "username", "icon_emoji")
        if key in params
    }
    return Message(text=_truncate(text, TEXT_LIMIT, "text"), blocks=blocks, extra=extra)


def _button(raw: Mapping[str, Any]) -> dict[str, Any]:
    """https://docs.slack.dev/reference/block-kit/block-elements/button-element"""
    button: dict[str, Any] = {
        "type": "button",
        "action_id": str(raw.get("action_id") or raw["label"])[:255],
        "text": {"type": "plain_text", "text": str(raw["label"]), "emoji": True},
    }
    if raw.get("style") in ("primary", "danger"):
        button["style"] = raw["style"]
    for key in ("value", "url"):
        if raw.get(key):
            button[key] = str(raw[key])
    return button


def _block(raw: Mapping[str, Any]) -> dict[str, Any]:
    block = dict(raw)
    limit = {"section": SECTION_TEXT_LIMIT, "header": HEADER_TEXT_LIMIT}.get(block.get("type", ""))
    text = block.get("text")
    if limit and isinstance(text, Mapping) and isinstance(text.get("text"), str):
        block["text"] = {**text, "text": _truncate(text["text"], limit, f"{block['type']} text")}
    return block


def _fallback_text(blocks: list[dict[str, Any]]) -> str:
    """The readable text of header, section and context blocks, for notifications."""
    parts: list[str] = []
    for block in blocks:
        items = [block.get("text"), *block.get("fields", []), *block.get("elements", [])]
        parts += [
            item["text"]
            for item in items
            if isinstance(item, Mapping) and isinstance(item.get("text"), str)
        ]
    return "\n".join(p for p in parts if p.strip())


def _truncate(text: str, limit: int, what: str) -> str:
    if len(text) <= limit:
        return text
    log.warning("slack %s of %d characters cut to %d", what, len(text), limit)
    return text[: limit - 1] + ELLIPSIS


def _entity_ref(ctx: DeliveryContext, channel: str) -> MessageRef | None:
    """The entity's earlier message in this destination, if it is still in its channel."""
    for ref in ctx.entity_refs.values():
        parsed = MessageRef.parse(ref)
        # A destination moved to another channel starts over there.
        if parsed and not (_CHANNEL_ID.fullmatch(channel) and parsed.channel != channel):
            return parsed
    return None


def _url_secrets(url: str) -> tuple[str, ...]:
    """The webhook URL and its path: a proxy's error page may quote either."""
    path = url.split("://", 1)[-1].partition("/")[2]
    return tuple(s for s in (url, "/" + path if path else "") if s)


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "REDACTED")
    return text


def _transport_retry(exc: Exception, where: str, secrets: tuple[str, ...]) -> SendResult:
    if isinstance(exc, TimeoutError):  # aiohttp's timeouts are TimeoutErrors too
        return retry(None, f"timed out sending to {where}")
    if isinstance(exc, aiohttp.ClientError):
        return retry(None, f"could not reach {where}: {type(exc).__name__}")
    detail = _scrub(str(exc), secrets)[:200]
    return retry(None, f"unreadable answer from {where}: {type(exc).__name__}: {detail}")


def _codes(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Error codes of https://docs.slack.dev/reference/methods/chat.postMessage#errors and
# .../chat.update#errors. Retried: Slack's own trouble, limits and migrations; the rest
# needs a person, so it fails into the dead-letter queue with a hint.
RETRY_ERRORS = _codes(
    "ratelimited rate_limited message_limit_exceeded internal_error fatal_error "
    "service_unavailable request_timeout team_added_to_org org_login_required update_failed "
    "external_channel_migrating streaming_state_conflict"
)
_AUTH_ERRORS = _codes(
    "invalid_auth not_authed account_inactive token_revoked token_expired "
    "not_allowed_token_type two_factor_setup_required"
)
_PERMISSION_ERRORS = _codes(
    "no_permission access_denied accesslimited restricted_action "
    "restricted_action_read_only_channel restricted_action_thread_only_channel "
    "restricted_action_non_threadable_channel ekm_access_denied team_access_not_granted "
    "enterprise_is_restricted as_user_not_supported cant_update_message edit_window_closed "
    "cant_broadcast_message team_not_found slack_connect_file_link_sharing_blocked "
    "slack_connect_canvas_sharing_blocked"
)
_CONTENT_ERRORS = _codes(
    "msg_too_long msg_blocks_too_long no_text invalid_blocks invalid_blocks_format "
    "too_many_attachments invalid_attachments invalid_arguments invalid_arg_name "
    "invalid_array_arg invalid_charset invalid_form_data invalid_post_type missing_post_type "
    "block_mismatch markdown_text_conflict invalid_metadata_format invalid_metadata_schema "
    "metadata_too_large metadata_must_be_sent_from_app no_dual_broadcast_content_update "
    "cannot_reply_to_message"
)
_HINTS: dict[str, str] = {
    "channel_not_found": "check the destination's `channel` (a channel ID like C0123456789) "
    "and invite the app to private channels",
    "not_in_channel": "invite the app to the channel (/invite @app) or grant chat:write.public",
    "is_archived": "the channel is archived; unarchive it or use another channel",
    "is_inactive": "the channel is archived or frozen; the message can no longer be edited",
    "message_not_found": "the message to edit no longer exists",
    "deprecated_endpoint": "Slack retired this method; upgrade Switchboard",
    "method_deprecated": "Slack retired this method; upgrade Switchboard",
}
_WEBHOOK_HINTS: dict[str, str] = {
    **dict.fromkeys(
        ("invalid_token", "no_service", "no_service_id", "no_team", "team_disabled"),
        "the webhook was revoked or its URL is wrong; create one and update the secret",
    ),
    **dict.fromkeys(
        ("channel_not_found", "channel_is_archived"),
        "the webhook's channel is gone or archived; create a webhook for another channel",
    ),
    **dict.fromkeys(
        ("action_prohibited", "posting_to_general_channel_denied"),
        "the workspace forbids this webhook to post there",
    ),
}


def classify_api_error(
    exc: SlackApiError, *, method: str, ctx: DeliveryContext, where: str, secrets: tuple[str, ...]
) -> SendResult:
    """Map a Web API error answer (`ok: false`, 429, 5xx, unreadable body) to retry or fail."""
    response = exc.response  # an AsyncSlackResponse, or aiohttp's response for a non-JSON body
    status = getattr(response, "status_code", None) or getattr(response, "status", None)
    data = getattr(response, "data", None)
    headers = getattr(response, "headers", None) or {}
    after = parse_retry_after(headers.get("Retry-After"), now=ctx.now)
    if status == 429 or (isinstance(data, dict) and data.get("error") == "ratelimited"):
        return retry(after, f"rate limited by Slack at {where}", status_code=status)
    if not isinstance(data, dict) or not isinstance(data.get("error"), str):
        detail = _scrub(str(exc), secrets)[:300]
        if not isinstance(status, int) or status < 300:
            reason = f"{method} at {where} gave no Slack answer: {detail}"
            return retry(None, reason, status_code=status)
        return classify_status(status, reason=f"Slack answered {status} at {where}: {detail}")
    error = str(data["error"])
    hint = _hint(error, ctx, data, method)
    reason = _scrub(f"Slack {method} failed: {error}{_detail(data)}; {hint} ({where})", secrets)
    # An undocumented error code with a 5xx is Slack having trouble, not our request.
    undocumented = hint.startswith("see https://")
    if error in RETRY_ERRORS or (isinstance(status, int) and status >= 500 and undocumented):
        return retry(after, reason, status_code=status)
    return fail(reason, status_code=status)


def _hint(error: str, ctx: DeliveryContext, data: Mapping[str, Any], method: str) -> str:
    if error in _AUTH_ERRORS:
        secret = ctx.destination.options.get("bot_token") if ctx.destination else None
        origin = getattr(secret, "origin", "") or "its secret reference"
        return f"Slack rejected the bot token; check the destination's bot_token ({origin})"
    if error == "missing_scope":
        return (
            f"the bot token lacks the scope {data.get('needed', 'chat:write')}; add it "
            "under OAuth & Permissions and reinstall the app"
        )
    if error in _PERMISSION_ERRORS:
        return "the workspace does not let this app do that here"
    if error in _CONTENT_ERRORS:
        return "Slack refused the message; fix the rule's text or blocks"
    if error in RETRY_ERRORS:
        return "a transient problem at Slack"
    return _HINTS.get(error, f"see https://docs.slack.dev/reference/methods/{method}#errors")


def _detail(data: Mapping[str, Any]) -> str:
    """Slack's own explanation: `errors` (invalid_blocks) or `response_metadata.messages`."""
    meta = data.get("response_metadata")
    messages = data.get("errors") or (meta.get("messages") if isinstance(meta, Mapping) else None)
    if not isinstance(messages, list) or not messages:
        return ""
    return " (" + "; ".join(str(m) for m in messages[:3])[:300] + ")"


def classify_webhook(
    status: int,
    body: str,
    headers: Mapping[str, str],
    *,
    ctx: DeliveryContext,
    where: str,
    secrets: tuple[str, ...],
) -> SendResult:
    """Map an incoming webhook's answer: 200 `ok`; the error is a plain-text code."""
    if 200 <= status < 300:
        return ok(None, status_code=status)
    text = _scrub(body.strip(), secrets)[:200] or "(empty body)"
    if status == 429:
        after = parse_retry_after(headers.get("Retry-After"), now=ctx.now)
        return retry(after, f"rate limited by Slack at {where}: {text}", status_code=429)
    hint = _WEBHOOK_HINTS.get(text, "")
    if not hint and 400 <= status < 500:
        hint = "Slack refused the message; fix the rule's text or blocks"
    reason = f"Slack answered {status} {text} for {where}" + (f"; {hint}" if hint else "")
    return classify_status(status, reason=reason)
