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
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, get_args

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from connectors._slack_api import (
    _BAD_URL,
    MessageRef,
    _ApiCall,
    _entity_ref,
    _transport_retry,
    _url_secrets,
    classify_webhook,
)
from connectors._slack_message import Message, build_message
from connectors.base import (
    SECRET_REF_SCHEMA,
    Connector,
    ConnectorEnv,
    DeliveryContext,
    Destination,
    RenderedAction,
    SendResult,
    fail,
    secret_option,
)

log = logging.getLogger(__name__)
_DM_CACHE = 10_000

Mode = Literal["post", "upsert", "thread"]
MODES: tuple[str, ...] = get_args(Mode)
DEFAULT_BASE_URL = "https://slack.com/api/"
DEFAULT_TIMEOUT_S = 10.0

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


class SlackConnector(Connector):
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
