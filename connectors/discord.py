"""Discord connector: a channel webhook, or a bot posting to channels and DMs (API v10).

Docs: https://discord.com/developers/docs/resources/webhook#execute-webhook and
https://discord.com/developers/docs/resources/message#create-message
Rate limits: https://discord.com/developers/docs/topics/rate-limits — a 429 carries
`retry_after` (seconds, float) in the JSON body and `Retry-After` in the headers.
`mode: upsert` edits the message sent earlier for the same entity (PATCH) instead of
posting a new one, so a task card follows the task.

A bot can also DM a person (`user:`, or `to: {person: ...}` in a rule: the DM channel is
opened once with POST /users/@me/channels and cached), post to any channel (`channel_id:`,
an id or a name from the destination's `channels:`), attach buttons and edit a message it
sent (`edit:`). Route buckets (`X-RateLimit-Bucket`) and the global limit are tracked in
connectors/_discord_limits.py: a send into an exhausted bucket is retried after its reset
without a request. (hikari's REST client also tracks buckets, but it owns its aiohttp
session and sleeps inside the call: the engine's httpx client, its network guard and
test transports, and the engine's own retry scheduling would all be bypassed.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx

from connectors._discord_errors import _retry_after, classify_discord
from connectors._discord_limits import Buckets, route_key
from connectors._discord_message import BUTTON_STYLES, build_message
from connectors.base import (
    SECRET_REF_SCHEMA,
    Connector,
    ConnectorEnv,
    DeliveryContext,
    RenderedAction,
    SendResult,
    fail,
    ok,
    redact_url,
    retry,
    secret_option,
)

_embed_schema: dict[str, Any] = {
    "type": "object",
    "description": "A Discord embed.",
    "examples": [{"title": "{{ event.data.entity.title }}", "url": "{{ event.data.entity.url }}"}],
    "additionalProperties": False,
    "properties": {
        "title": {
            "type": "string",
            "description": "Embed title (256 chars).",
            "examples": ["New issue"],
        },
        "description": {
            "type": "string",
            "description": "Embed text (4096 chars).",
            "examples": ["Opened by Ada"],
        },
        "url": {
            "type": "string",
            "description": "Link of the title.",
            "examples": ["https://github.com/o/r/issues/1"],
        },
        "color": {
            "type": ["integer", "string"],
            "description": "Colour as an integer.",
            "examples": [5763719],
        },
        "timestamp": {
            "type": "string",
            "description": "ISO 8601 time shown in the footer.",
            "examples": ["{{ event.time }}"],
        },
        "footer": {
            "type": "object",
            "description": "{text, icon_url}.",
            "examples": [{"text": "Switchboard"}],
        },
        "fields": {
            "type": "array",
            "maxItems": 25,
            "description": "Up to 25 {name, value, inline} fields.",
            "examples": [
                [{"name": "Repo", "value": "{{ event.data.fields.repository }}", "inline": True}]
            ],
            "items": {
                "type": "object",
                "required": ["name", "value"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "value": {"type": "string"},
                    "inline": {"type": "boolean"},
                },
            },
        },
    },
}

params_schema: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["channel"],
    "anyOf": [
        {"required": ["content"]},
        {"required": ["embed"]},
        {"required": ["embeds"]},
        {"required": ["edit"]},
    ],
    "properties": {
        "channel": {
            "type": "string",
            "description": "Name of a discord destination in switchboard.yaml.",
            "examples": ["task-notifications"],
        },
        "content": {
            "type": "string",
            "description": "Message text (2000 chars; longer is cut with …).",
            "examples": ["**{{ event.data.entity.title }}** was opened"],
        },
        "embed": _embed_schema,
        "embeds": {
            "type": "array",
            "maxItems": 10,
            "items": _embed_schema,
            "description": "Up to 10 embeds.",
            "examples": [[{"title": "{{ event.data.entity.title }}"}]],
        },
        "username": {
            "type": "string",
            "description": "Overrides the webhook's name (webhooks only).",
            "examples": ["Switchboard"],
        },
        "mode": {
            "type": "string",
            "enum": ["post", "upsert"],
            "description": "upsert: edit the message sent earlier for the same entity.",
            "examples": ["upsert"],
        },
        "user": {
            "type": "string",
            "description": "Bot only: DM this Discord user id (a rule's `to: {person: ...}` "
            "fills it from people:).",
            "examples": ["576377900236931079"],
        },
        "channel_id": {
            "type": "string",
            "description": "Bot only: post to this channel: an id, or a name from the "
            "destination's `channels:`.",
            "examples": ["standup", "1213445701632131072"],
        },
        "buttons": {
            "type": "array",
            "maxItems": 25,
            "description": "Buttons under the message (5 per row): a click reaches the "
            "discord source as an interaction with the button's custom_id.",
            "examples": [[{"label": "Approve", "custom_id": "approve", "style": "success"}]],
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["label"],
                "properties": {
                    "label": {"type": "string", "maxLength": 80},
                    "custom_id": {"type": "string", "maxLength": 100},
                    "url": {"type": "string"},
                    "style": {"enum": sorted(BUTTON_STYLES)},
                    "disabled": {"type": ["boolean", "string"]},
                },
            },
        },
        "components": {
            "type": "array",
            "description": "Raw message components (action rows), as Discord defines them.",
            "examples": [[{"type": 1, "components": []}]],
        },
        "edit": {
            "type": ["object", "string"],
            "description": "Bot only: edit this message instead of posting one: "
            "{channel_id, message_id}, or a ref this bot returned (`<channel>/<message>`).",
            "examples": [{"channel_id": "1573654206873600005", "message_id": "1"}],
            "additionalProperties": False,
            "required": ["message_id"],
            "properties": {
                "channel_id": {"type": "string"},
                "message_id": {"type": "string"},
            },
        },
    },
}

destination_schema: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "oneOf": [{"required": ["webhook_url"]}, {"required": ["bot_token"]}],
    "properties": {
        "webhook_url": {
            **SECRET_REF_SCHEMA,
            "description": "The channel webhook URL (a secret: it grants posting).",
            "examples": [{"env": "DISCORD_WEBHOOK_URL"}],
        },
        "bot_token": {
            **SECRET_REF_SCHEMA,
            "description": "A bot token, instead of a webhook (with channel_id).",
            "examples": [{"env": "DISCORD_BOT_TOKEN"}],
        },
        "channel_id": {
            "type": "string",
            "pattern": "^[0-9]+$",
            "description": "The channel the bot posts to when an action names none.",
            "examples": ["1213445701632131072"],
        },
        "channels": {
            "type": "object",
            "description": "Channel names actions may use as `channel_id:`, with their ids.",
            "additionalProperties": {"type": "string", "pattern": "^[0-9]+$"},
            "examples": [{"standup": "1213445701632131072"}],
        },
        "api_url": {
            "type": "string",
            "description": "Discord API base for bot mode (a proxy or a test double).",
            "default": "https://discord.com/api/v10",
            "examples": ["https://discord.com/api/v10"],
        },
        "username": {
            "type": "string",
            "description": "Default sender name (webhooks only).",
            "examples": ["Switchboard"],
        },
    },
}

API_URL = "https://discord.com/api/v10"


class DiscordConnector(Connector):
    """Posts `content` and embeds through a webhook, with `?wait=true` to get the message id."""

    name: ClassVar[str] = "discord"
    params_schema: ClassVar[dict[str, Any]] = params_schema
    destination_schema: ClassVar[dict[str, Any]] = destination_schema
    destination_param: ClassVar[str | None] = "channel"
    #: Discord's webhook limits: about 5 requests per 2 s per webhook, and 30 messages a
    #: minute per channel. A destination's `rate_limit` setting replaces them.
    rate_limits: ClassVar[tuple[tuple[int, float], ...]] = ((5, 2.0), (30, 60.0))

    #: A rule's `to: {person: ...}` fills `user:` with the person's Discord id.
    person_address: ClassVar[tuple[str, str]] = ("user", "discord")

    def __init__(self, env: ConnectorEnv) -> None:
        self._http = env.http
        self._buckets = Buckets()
        #: (bot token digest, user id) → DM channel id: opening a DM is one call per person.
        self._dms: dict[tuple[str, str], str] = {}

    async def send(self, action: RenderedAction, ctx: DeliveryContext) -> SendResult:
        target = _target(ctx)
        if target is None:
            return fail("discord destination has neither webhook_url nor bot_token")
        params = action.params
        bot_only = [k for k in ("user", "channel_id", "edit") if params.get(k)]
        if bot_only and not target.bot:
            return fail(
                f"discord `{bot_only[0]}:` needs a bot destination (bot_token); "
                f"'{ctx.destination.name if ctx.destination else '?'}' is a webhook"
            )
        try:
            body = build_message(params, ctx)
        except ValueError as exc:
            return fail(f"cannot build the Discord message: {exc}")
        try:
            if target.bot:
                body.pop("username", None)  # a bot posts under its own name
                return await self._send_bot(target, action, body, ctx)
            return await self._send_webhook(target, action, body, ctx)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            # Retrying cannot fix the URL, and its text may be the secret: name the problem.
            return fail(
                f"discord {target.what} is not a usable https URL ({type(exc).__name__}); "
                "check the destination's settings"
            )
        except httpx.TimeoutException:
            return retry(None, f"timed out posting to {redact_url(target.post_url)}")
        except httpx.TransportError as exc:
            return retry(
                None, f"could not reach {redact_url(target.post_url)}: {type(exc).__name__}"
            )

    async def _send_webhook(
        self, target: _Target, action: RenderedAction, body: dict[str, Any], ctx: DeliveryContext
    ) -> SendResult:
        earlier = ctx.previous_ref or ctx.entity_refs.get(action.operation or "")
        if action.params.get("mode") == "upsert" and earlier:
            response = await self._http.patch(
                f"{target.messages_url}/{earlier}", json=body, headers=target.headers
            )
            if response.status_code != 404:  # 404: the message was deleted; post anew
                return classify_discord(response, ctx, target.secret)
        response = await self._http.post(target.post_url, json=body, headers=target.headers)
        return classify_discord(response, ctx, target.secret)

    async def _send_bot(
        self, target: _Target, action: RenderedAction, body: dict[str, Any], ctx: DeliveryContext
    ) -> SendResult:
        params = action.params
        edit = params.get("edit")
        if isinstance(edit, str) and edit:
            edit = {"message_id": edit}
        if isinstance(edit, dict):
            # message_id may be a ref this connector returned: "<channel id>/<message id>".
            ref_channel, _, message = str(edit["message_id"]).rpartition("/")
            edited = _channel(target, edit.get("channel_id") or ref_channel)
            if edited is None:
                return fail(_no_channel(target, edit.get("channel_id")))
            url = f"{target.api}/channels/{edited}/messages/{message}"
            return await self._bot_call("PATCH", url, body, target, ctx, edited)
        channel: str | None
        if user := params.get("user"):
            if not str(user).isdigit():
                return fail(f"discord user {user!r} is not a Discord user id (digits)")
            opened = await self._dm_channel(target, str(user), ctx)
            if isinstance(opened, SendResult):
                return opened
            channel = opened
        else:
            channel = _channel(target, params.get("channel_id"))
        if channel is None:
            return fail(_no_channel(target, params.get("channel_id")))
        earlier = ctx.previous_ref or ctx.entity_refs.get(action.operation or "")
        if params.get("mode") == "upsert" and earlier:
            earlier_channel, _, message = earlier.rpartition("/")
            url = f"{target.api}/channels/{earlier_channel or channel}/messages/{message}"
            result = await self._bot_call("PATCH", url, body, target, ctx, channel)
            if result.status_code != 404:  # 404: the message was deleted; post anew
                return result
        url = f"{target.api}/channels/{channel}/messages"
        return await self._bot_call("POST", url, body, target, ctx, channel)

    async def _bot_call(
        self,
        method: str,
        url: str,
        body: dict[str, Any],
        target: _Target,
        ctx: DeliveryContext,
        channel: str,
    ) -> SendResult:
        route = route_key(method, url)
        if (wait := self._buckets.wait(route)) is not None:
            return retry(wait, f"Discord's rate limit for {route} is spent; retrying after reset")
        response = await self._http.request(method, url, json=body, headers=target.headers)
        self._buckets.learn(route, response, _retry_after(response, ctx))
        result = classify_discord(response, ctx, target.secret)
        if result.outcome != "ok":
            return result
        # The buckets above pace the bot route by route: no pause of the whole destination.
        ref = (
            result.ref
            if channel == target.default_channel or result.ref is None
            else (f"{channel}/{result.ref}")
        )
        return ok(ref, status_code=result.status_code)

    async def _dm_channel(
        self, target: _Target, user: str, ctx: DeliveryContext
    ) -> str | SendResult:
        """The DM channel with `user`: https://discord.com/developers/docs/resources/user#create-dm"""
        key = (hashlib.sha256(target.secret.encode()).hexdigest()[:16], user)
        if (known := self._dms.get(key)) is not None:
            return known
        url = f"{target.api}/users/@me/channels"
        route = route_key("POST", url)
        if (wait := self._buckets.wait(route)) is not None:
            return retry(wait, "Discord's rate limit for opening DMs is spent")
        response = await self._http.post(url, json={"recipient_id": user}, headers=target.headers)
        self._buckets.learn(route, response, _retry_after(response, ctx))
        result = classify_discord(response, ctx, target.secret)
        if result.outcome != "ok" or result.ref is None:
            if result.outcome == "fail":
                return fail(f"cannot open a DM with Discord user {user}: {result.reason}")
            return result
        if len(self._dms) >= _DM_CACHE:
            self._dms.clear()
        self._dms[key] = result.ref
        return result.ref


_DM_CACHE = 10_000


@dataclass(frozen=True, slots=True)
class _Target:
    """Where a message goes: a webhook (the URL is the secret) or a bot and a channel."""

    post_url: str
    messages_url: str
    headers: dict[str, str]
    secret: str
    bot: bool
    what: str
    api: str = API_URL
    default_channel: str | None = None
    channels: Mapping[str, str] = field(default_factory=dict)


def _channel(target: _Target, wanted: Any) -> str | None:
    """A channel id: given, named in the destination's `channels:`, or its default."""
    if not wanted:
        return target.default_channel
    text = str(wanted)
    if text in target.channels:
        return target.channels[text]
    return text if text.isdigit() else None


def _no_channel(target: _Target, wanted: Any) -> str:
    if wanted:
        known = ", ".join(sorted(target.channels)) or "none"
        return (
            f"discord channel_id {wanted!r} is neither a channel id nor a name in the "
            f"destination's channels: (names: {known})"
        )
    return (
        "the discord bot destination has no channel_id: give the action channel_id: or "
        "user:, or set channel_id on the destination"
    )


def _target(ctx: DeliveryContext) -> _Target | None:
    url = secret_option(ctx.destination, "webhook_url")
    if url is not None:
        # `wait=true` joins the URL's own query: a webhook URL may carry `thread_id` (post
        # into a thread), which httpx's `params=` would replace.
        base, _, query = url.partition("?")
        if not any(pair.startswith("wait=") for pair in query.split("&")):
            query = f"{query}&wait=true" if query else "wait=true"
        return _Target(
            post_url=f"{base}?{query}",
            messages_url=f"{url.split('?')[0].rstrip('/')}/messages",
            headers={},
            secret=url,
            bot=False,
            what="webhook_url",
        )
    token = secret_option(ctx.destination, "bot_token")
    options = ctx.destination.options if ctx.destination else {}
    if token is None:
        return None
    channel = options.get("channel_id")
    api = str(options.get("api_url") or API_URL).rstrip("/")
    messages = f"{api}/channels/{channel}/messages"
    return _Target(
        post_url=messages,
        messages_url=messages,
        headers={"Authorization": f"Bot {token}"},
        secret=token,
        bot=True,
        what="api_url",
        api=api,
        default_channel=str(channel) if channel else None,
        channels={str(k): str(v) for k, v in (options.get("channels") or {}).items()},
    )
